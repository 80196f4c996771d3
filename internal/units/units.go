// Package units parses and prints byte sizes as recipes write them:
// "64MiB", "1.5GiB", "512K", "4096".
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Binary size units.
const (
	KiB int64 = 1 << 10
	MiB int64 = 1 << 20
	GiB int64 = 1 << 30
	TiB int64 = 1 << 40
)

var suffixes = []struct {
	s string
	n int64
}{
	{"KiB", KiB}, {"MiB", MiB}, {"GiB", GiB}, {"TiB", TiB},
	{"K", KiB}, {"M", MiB}, {"G", GiB}, {"T", TiB},
	{"B", 1},
}

// ParseSize reads a size in bytes: a whole number optionally followed by a
// binary unit (B, K or KiB, M or MiB, G or GiB, T or TiB; K, M, G and T are
// binary too, as in qemu-img). A fraction is allowed with a unit when the
// result is a whole number of bytes ("1.5GiB"). Decimal units (kB, MB, GB)
// are rejected because they are easily mistaken for binary ones.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size: write a number of bytes or a size such as \"64MiB\"")
	}
	for _, dec := range []string{"kB", "KB", "MB", "GB", "TB"} {
		if strings.HasSuffix(t, dec) {
			return 0, fmt.Errorf("size %q: decimal units are not accepted; write %siB for a binary size or a number of bytes", s, dec[:1])
		}
	}
	mult := int64(1)
	num := t
	for _, u := range suffixes {
		if strings.HasSuffix(t, u.s) {
			mult, num = u.n, strings.TrimSpace(strings.TrimSuffix(t, u.s))
			break
		}
	}
	if num == "" {
		return 0, fmt.Errorf("size %q has a unit but no number", s)
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("size %q is negative", s)
		}
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("size %q is too large", s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(num, "eExXpP_") {
		return 0, fmt.Errorf("size %q: expected a number of bytes or a number with a unit such as MiB", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("size %q is negative", s)
	}
	b := f * float64(mult)
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	if b != math.Trunc(b) {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	return int64(b), nil
}

// FormatSize prints n with the largest binary unit that divides it exactly.
func FormatSize(n int64) string {
	for _, u := range []struct {
		s string
		n int64
	}{{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}} {
		if n != 0 && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

// AlignUp rounds n up to a multiple of align (a positive number).
func AlignUp(n, align int64) int64 {
	if r := n % align; r != 0 {
		return n + align - r
	}
	return n
}
