// Package config reads wslmtu.toml. Its keys are the long names of the CLI
// flags with '-' written as '_', so the README documents both at once, and
// one table (Keys) describes every key for the parser, the flags, the
// commented default file and the README.
//
// It may import internal/statefile (to read the file safely) and
// internal/tunnel (the kinds and limits); every other package may import it.
package config
