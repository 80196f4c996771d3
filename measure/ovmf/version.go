package ovmf

// ModelVersion identifies what this package reads from a firmware image.
// Bump it whenever any output changes for some input (a parsed footer table,
// GUID, or error), since the SEV and TDX models build on it and caches of
// their measurements are keyed by it too.
//
// 2: Inspect (modules, SEV/TDX metadata, variable store), which decides
// what the builder records as covered.
const ModelVersion = "2"
