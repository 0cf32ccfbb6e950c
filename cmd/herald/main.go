// Command herald is the Herald MQTT broker and its load generator.
//
//	herald serve    run a broker node
//	herald bench    run a load test against any MQTT broker
//	herald passwd   add, change or delete a user in a password file
//	herald version  print the version
package main

import (
	"fmt"
	"os"

	"github.com/herald-mqtt/herald/broker"
)

const usage = `Herald: an MQTT broker for real-time apps with millions of connected users.

Usage:
  herald serve [flags]     run a broker node (herald serve -h for flags)
  herald bench SCENARIO    run a load test (herald bench -h for scenarios)
  herald passwd FILE USER  add or change a user of a password file (-D deletes)
  herald version           print the version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		os.Exit(runServe(os.Args[2:]))
	case "bench":
		os.Exit(runBench(os.Args[2:]))
	case "passwd":
		os.Exit(runPasswd(os.Args[2:]))
	case "version", "--version", "-v":
		fmt.Println("herald", broker.Version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "herald: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}
