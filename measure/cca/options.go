package cca

import (
	"fmt"
	"strings"
)

// options are the options of a command line in the style of Rust's clap,
// which realm-measurements and (for its realm options) kvmtool follow:
// --name value, --name=value, -x value, -xvalue, -x=value.
type options struct {
	what  string          // the command, for errors
	takes map[string]bool // long name: whether it takes a value
	short map[byte]string // one-letter options: their long name
}

// parse calls set for each option of args, in order, until an argument
// that is no option: it returns the arguments from there (nil when there
// are none).
func (o options) parse(args []string, set func(name, val string) error) ([]string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		var name, val string
		hasVal := false
		switch {
		case strings.HasPrefix(a, "--"):
			name, val, hasVal = strings.Cut(a[2:], "=")
		case strings.HasPrefix(a, "-") && len(a) >= 2:
			long, ok := o.short[a[1]]
			if !ok {
				return nil, fmt.Errorf("%sunknown option %q", o.what, a)
			}
			name = long
			if len(a) > 2 {
				val, hasVal = strings.TrimPrefix(a[2:], "="), true
			}
		default:
			return args[i:], nil
		}
		takes, known := o.takes[name]
		switch {
		case !known:
			return nil, fmt.Errorf("%sunknown option --%s", o.what, name)
		case takes && !hasVal:
			if i+1 >= len(args) {
				return nil, fmt.Errorf("%s--%s needs a value", o.what, name)
			}
			i++
			val = args[i]
		case !takes && hasVal:
			return nil, fmt.Errorf("%s--%s takes no value", o.what, name)
		}
		if err := set(name, val); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
