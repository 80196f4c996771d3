// Package names is cocobuild's one name check: recipe names, block names,
// release names and namespaces follow the same rule, with the same
// messages.
package names

import (
	"errors"
	"fmt"
	"strings"
)

// Check reports whether s is a name: letters, digits, '-', '_' and '.',
// not empty and not "." or ".." (a name may become a directory).
func Check(s string) error {
	switch s {
	case "":
		return errors.New("a name cannot be empty")
	case ".", "..":
		return fmt.Errorf("%q is not a name: use letters, digits, '-', '_' and '.'", s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q is not a name: use letters, digits, '-', '_' and '.'", s)
		}
	}
	return nil
}

// CheckPath reports whether s is a path of names separated by single
// slashes, such as github.com/acme/guest.
func CheckPath(s string) error {
	for _, seg := range strings.Split(s, "/") {
		if err := Check(seg); err != nil {
			return fmt.Errorf("%q is not slash-separated names such as github.com/acme/guest: %w", s, err)
		}
	}
	return nil
}
