package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/taxflow/taxflow/api"
)

// runStaff manages the staff accounts of the console.
func runStaff(ctx context.Context, args []string, stdin io.Reader) error {
	usage := errors.New("usage: taxflow staff create --role reviewer|inspector|specialist|operator --name LOGIN [--tenant T] [--password-stdin]")
	if len(args) == 0 || args[0] != "create" {
		return usage
	}
	fs := flag.NewFlagSet("staff create", flag.ContinueOnError)
	role := fs.String("role", "", "reviewer, inspector, specialist or operator")
	name := fs.String("name", "", "the login (lower-case letters, digits, '.', '_', '-')")
	tenant := fs.String("tenant", "", "only this tenant's cases (default: every tenant's, as the tax office)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin instead of generating one")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *role == "" || *name == "" {
		return usage
	}
	password, generated, err := staffPassword(*fromStdin, stdin)
	if err != nil {
		return err
	}
	a, err := newApp(ctx)
	if err != nil {
		return err
	}
	if _, err := api.StaffAccounts(a.cfg, a.clients).Create(ctx, *name, *role, *tenant, password); err != nil {
		return fmt.Errorf("create staff account: %w", err)
	}
	scope := "every tenant"
	if *tenant != "" {
		scope = "tenant " + *tenant
	}
	fmt.Fprintf(os.Stderr, "staff account %s (%s, %s) created; sign in at /console\n", *name, *role, scope)
	if generated {
		fmt.Fprintln(os.Stderr, "password, shown once:")
		fmt.Println(password)
	}
	return nil
}

// staffPassword reads the password from stdin, or makes a random one (shown once).
func staffPassword(fromStdin bool, stdin io.Reader) (password string, generated bool, err error) {
	if !fromStdin {
		p, err := api.NewPassword()
		return p, true, err
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, fmt.Errorf("read the password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", false, errors.New("read the password: stdin is empty")
	}
	return line, false, nil
}
