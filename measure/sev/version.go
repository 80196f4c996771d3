package sev

// ModelVersion identifies this package's measurement model. Bump it whenever
// any output of the model changes for some input: a digest, a VMSA page, the
// hashes table, a Result field, a note or the Variant text. Caches of computed
// measurements (the builder's measure step) are keyed by it, so a model fix
// recomputes every measurement instead of serving the old value.
//
// 3: an image that is not a firmware (ovmf.Recognize) is an error unless
// Params.AnyFirmware; Params.VMSAGPA is a pointer, so that GPA 0 is used.
const ModelVersion = "3"
