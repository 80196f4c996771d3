package pe

// ModelVersion identifies this package's PE parsing and Authenticode model.
// Bump it whenever any output changes for some input (a digest, a parsed
// field, an accepted or rejected image), since the TDX model measures the
// kernel with it and caches of its measurements are keyed by it too.
const ModelVersion = "1"
