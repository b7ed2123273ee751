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
//
//	taxflow staff create --role R --name LOGIN [--tenant T] [--person ID] [--password-stdin]
//	taxflow staff disable NAME            no sign-in from now on; every session ended
//	taxflow staff sessions revoke NAME    end every session of NAME now
func runStaff(ctx context.Context, args []string, stdin io.Reader) error {
	usage := errors.New("usage: taxflow staff create --role reviewer|inspector|specialist|operator --name LOGIN [--tenant T] [--person ID] [--password-stdin] | disable NAME | sessions revoke NAME")
	if len(args) == 0 {
		return usage
	}
	switch {
	case args[0] == "disable" && len(args) == 2:
		a, err := newApp(ctx)
		if err != nil {
			return err
		}
		n, err := api.StaffAccounts(a.cfg, a.clients).Disable(ctx, args[1])
		if err != nil {
			return fmt.Errorf("disable %s: %w", args[1], err)
		}
		fmt.Fprintf(os.Stderr, "staff account %s disabled; %d session(s) ended\n", args[1], n)
		return nil
	case args[0] == "sessions" && len(args) == 3 && args[1] == "revoke":
		a, err := newApp(ctx)
		if err != nil {
			return err
		}
		n, err := api.StaffAccounts(a.cfg, a.clients).RevokeSessions(ctx, args[2])
		if err != nil {
			return fmt.Errorf("revoke the sessions of %s: %w", args[2], err)
		}
		fmt.Fprintf(os.Stderr, "%d session(s) of %s ended\n", n, args[2])
		return nil
	case args[0] != "create":
		return usage
	}
	fs := flag.NewFlagSet("staff create", flag.ContinueOnError)
	role := fs.String("role", "", "reviewer, inspector, specialist or operator")
	name := fs.String("name", "", "the login (lower-case letters, digits, '.', '_', '-')")
	tenant := fs.String("tenant", "", "only this tenant's cases (default: every tenant's, as the tax office)")
	person := fs.String("person", "", "the person's staff id, the same on their API keys (apikey create --person): one identity for the separation of duties (default: the login)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin instead of generating one")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *role == "" || *name == "" {
		return usage
	}
	if *person == "" {
		*person = *name
	}
	password, generated, err := staffPassword(*fromStdin, stdin)
	if err != nil {
		return err
	}
	a, err := newApp(ctx)
	if err != nil {
		return err
	}
	if _, err := api.StaffAccounts(a.cfg, a.clients).CreatePerson(ctx, *name, *role, *tenant, *person, password); err != nil {
		return fmt.Errorf("create staff account: %w", err)
	}
	scope := "every tenant"
	if *tenant != "" {
		scope = "tenant " + *tenant
	}
	fmt.Fprintf(os.Stderr, "staff account %s (%s, %s, person %s) created; sign in at /console\n", *name, *role, scope, *person)
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
