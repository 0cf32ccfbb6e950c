package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/herald-mqtt/herald/auth"
)

const passwdUsage = `Usage:
  herald passwd FILE USER            set USER's password (prompted, or the first line of stdin)
  herald passwd -b FILE USER PASSWORD  set it from the command line (visible to other users of the host)
  herald passwd -D FILE USER         delete USER

FILE is created (mode 0600) if missing and replaced atomically, so a running
broker can be told to reload it with SIGHUP.
`

// runPasswd is `herald passwd`: add, change or delete a user of a password
// file.
func runPasswd(args []string) int {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, passwdUsage); fs.PrintDefaults() }
	batch := fs.Bool("b", false, "take the password from the command line")
	del := fs.Bool("D", false, "delete the user")
	cost := fs.Int("cost", 0, "bcrypt cost, 4 to 31 (default 10)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	want := 2
	if *batch {
		want = 3
	}
	if fs.NArg() != want || *batch && *del {
		fs.Usage()
		return 2
	}
	file, user := fs.Arg(0), fs.Arg(1)

	var hash []byte
	if !*del {
		var password []byte
		if *batch {
			password = []byte(fs.Arg(2))
		} else {
			var err error
			if password, err = readPassword(os.Stdin, os.Stderr); err != nil {
				fmt.Fprintf(os.Stderr, "herald passwd: %v\n", err)
				return 1
			}
		}
		if len(password) == 0 {
			fmt.Fprintln(os.Stderr, "herald passwd: empty password")
			return 1
		}
		var err error
		if hash, err = auth.HashPassword(password, *cost); err != nil {
			fmt.Fprintf(os.Stderr, "herald passwd: %v\n", err)
			return 1
		}
	}
	existed, err := auth.UpdatePasswordFile(file, user, hash)
	if err != nil {
		fmt.Fprintf(os.Stderr, "herald passwd: %v\n", err)
		return 1
	}
	switch {
	case *del:
		fmt.Fprintf(os.Stderr, "deleted %s from %s\n", user, file)
	case existed:
		fmt.Fprintf(os.Stderr, "changed the password of %s in %s\n", user, file)
	default:
		fmt.Fprintf(os.Stderr, "added %s to %s\n", user, file)
	}
	return 0
}

// readPassword prompts twice without echo on a terminal; otherwise it
// reads the first line of in (a pipe or a file, for scripts).
func readPassword(in *os.File, prompt io.Writer) ([]byte, error) {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(in).ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return bytes.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(prompt, "Password: ")
	p1, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return nil, err
	}
	fmt.Fprint(prompt, "Password again: ")
	p2, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(p1, p2) {
		return nil, errors.New("the passwords differ")
	}
	return p1, nil
}
