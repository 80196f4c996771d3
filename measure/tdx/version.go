package tdx

// ModelVersion identifies this package's measurement model. Bump it whenever
// any output of the model changes for some input: MRTD, an RTMR, an event
// (its order, digest, data or description), the event log bytes, the Report
// or the Variant. Caches of computed measurements (the builder's measure
// step) are keyed by it, so a model fix recomputes every measurement instead
// of serving the old value.
const ModelVersion = "7"
