// Package labtest builds the namespace lab of internal/lab for a test:
// it skips without root and closes the lab when the test ends, also when
// it fails.
//
// It may import internal/lab and internal/testenv/netnstest; only tests
// import it.
package labtest
