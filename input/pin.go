package input

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"

	"github.com/cocobuild/cocobuild/internal/filehash"
	"github.com/cocobuild/cocobuild/recipes"
)

func (n *inputNode) mismatch(got string) error {
	e := &PinMismatchError{Input: n.name, Source: n.source(), Want: n.pin, Got: got, Subject: n.pinRng, InLock: n.lockPin}
	if n.env != nil && n.env.lock != nil && n.env.lock.src != nil {
		e.lockPath, e.lockSrc = n.env.lock.Path, n.env.lock.src
	}
	return e
}

// PinMismatchError reports bytes whose digest is not the pinned one.
type PinMismatchError struct {
	Input, Source, Want, Got string
	// Subject is the sha256 attribute that holds the pin: in the recipe,
	// or in the lock file when InLock.
	Subject *hcl.Range
	InLock  bool

	lockPath string // the lock file and its bytes, to show the pin in it
	lockSrc  []byte
}

func (e *PinMismatchError) Error() string {
	msg := fmt.Sprintf("input %q (%s): sha256 mismatch: expected %s, got %s; if the new bytes are the ones you want, ", e.Input, e.Source, e.Want, e.Got)
	switch {
	case e.InLock:
		return msg + "run `cocobuild lock -update` to record them"
	case e.Subject != nil:
		return msg + fmt.Sprintf("edit the sha256 at %s:%d:%d", e.Subject.Filename, e.Subject.Start.Line, e.Subject.Start.Column)
	}
	return msg + "update the pin"
}

// DiagnosticFiles are the sources Diagnostic points into beyond the
// recipe's: the lock file, when it was read.
func (e *PinMismatchError) DiagnosticFiles() map[string][]byte {
	if e.lockSrc == nil {
		return nil
	}
	return map[string][]byte{e.lockPath: e.lockSrc}
}

// Diagnostic shows the mismatch at the sha256 attribute that holds the pin;
// nil when the pin's place is unknown.
func (e *PinMismatchError) Diagnostic() *hcl.Diagnostic {
	if e.Subject == nil {
		return nil
	}
	detail := fmt.Sprintf("input %q (%s): expected %s, got %s. ", e.Input, e.Source, e.Want, e.Got)
	if e.InLock {
		detail += "This pin was recorded by `cocobuild lock`; if the new bytes are the ones you want, run `cocobuild lock -update`."
	} else {
		detail += "If the new bytes are the ones you want, edit this sha256 in the recipe (`cocobuild lock -update` does not change a pin written in the recipe)."
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Input does not match its sha256 pin", Detail: detail, Subject: e.Subject}
}

// ResolvePin fetches the input (into the cache) and returns its pin; for a
// Debian package without a version, or with update, it first asks apt for
// the version it serves now.
func ResolvePin(ctx context.Context, node recipes.Node, update bool) (string, Pin, error) {
	n, ok := node.(*inputNode)
	if !ok {
		return "", Pin{}, fmt.Errorf("not an input block")
	}
	if n.deb != "" && !n.recipeVersion && (n.version == "" || update) {
		v, err := n.aptCandidate(ctx)
		if err != nil {
			return n.name, Pin{}, fmt.Errorf("input %q: %w", n.name, err)
		}
		if n.version != v {
			n.version = v
			if n.pinRng == nil || n.lockPin {
				n.pin = ""
			}
		}
	}
	// A pin written in the recipe stays: the bytes must match it, and
	// the lock never records a digest that contradicts it.
	if update && (n.pinRng == nil || n.lockPin) {
		n.pin = ""
	}
	if n.file != "" {
		sum, _, err := filehash.SHA256(n.file)
		if err != nil {
			return n.name, Pin{}, fmt.Errorf("input %q: %w", n.name, err)
		}
		if n.pin != "" && sum != n.pin {
			return n.name, Pin{}, n.mismatch(sum)
		}
		return n.name, Pin{Source: n.source(), SHA256: sum}, nil
	}
	blob, _, err := n.fetchBlob(ctx, nil)
	if err != nil {
		return n.name, Pin{}, err
	}
	return n.name, Pin{Source: n.source(), SHA256: filepath.Base(blob)}, nil
}
