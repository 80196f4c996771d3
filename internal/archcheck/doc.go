// Package archcheck holds no code: its test keeps the layout that
// docs/architecture.md describes. Dependencies point one way (cmd → repro →
// builder → block kinds → tee, recipes → manifest; measure imports only
// measure), no block kind imports another sideways, and builder, publish
// and cmd name no TEE: they iterate the registered ones.
package archcheck
