// Package proc answers questions about other processes from /proc: is this
// pid a wslmtu agent, is it alive, what is it. Every place that needs to
// know "is that the agent?" asks here, so the answer is the same everywhere.
//
// It imports the standard library only.
package proc
