package main

import (
	"os"

	"github.com/herald-mqtt/herald/bench/cli"
)

// runBench runs `herald bench ...` with the arguments after "bench" and
// returns the exit status: 0 when the run passes, 1 when it fails, 2 on
// bad usage.
func runBench(args []string) int {
	return cli.Main(args, os.Stdout, os.Stderr)
}
