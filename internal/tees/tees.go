// Package tees is the one list of the TEEs cocobuild measures and
// publishes for. Adding a TEE is its folder tee/NAME (with its pure model
// under measure/NAME) and a line here. It imports only the registrations,
// so that every package's tests can use the list (publish and builder
// among them) without an import cycle.
package tees

import (
	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/tee"
	"github.com/cocobuild/cocobuild/tee/cca"
	"github.com/cocobuild/cocobuild/tee/se"
	"github.com/cocobuild/cocobuild/tee/sev"
	"github.com/cocobuild/cocobuild/tee/sgx"
	"github.com/cocobuild/cocobuild/tee/tdx"
	"github.com/cocobuild/cocobuild/tee/vtpm"
)

// All returns the registered TEEs, in the order commands list them.
func All() tee.Set {
	return tee.NewSet(
		sev.TEE{},
		tdx.TEE{},
		vtpm.TEE{},
		se.TEE{},
		cca.TEE{},
	)
}

// Standalone returns the `cocobuild measure` subcommands of the TEEs that
// have no tee.TEE registration because no measure block fits them, in
// the order commands list them: SGX enclaves (see tee/sgx).
func Standalone() []func(*tee.CLI) *cobra.Command {
	return []func(*tee.CLI) *cobra.Command{sgx.Command}
}
