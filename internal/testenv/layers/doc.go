// Package layers holds one test, TestLayers: the package table of
// docs/development.md (what each package owns and may import) checked
// against the imports of the code, so the map a newcomer reads is the one
// the code follows.
//
// It imports nothing of this module.
package layers
