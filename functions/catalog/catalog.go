// Package catalog builds every function's handler by logical name. The functions'
// lambda/main.go and the in-process invoker use the same constructors, so a function
// behaves the same in both.
package catalog

import (
	"github.com/taxflow/taxflow/functions/audit"
	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/functions/selfcheck"
	"github.com/taxflow/taxflow/internal/contract"
)

var constructors = map[string]func(fn.Deps) any{
	contract.FnAuditAppend: func(d fn.Deps) any {
		return fn.Handler(audit.Handler{DB: d.DynamoDB, Table: d.Config.Name(audit.Table)}.Append)
	},
	contract.FnSelfCheck: func(d fn.Deps) any {
		return fn.Handler(selfcheck.Handler{DB: d.DynamoDB, Table: d.Config.Name(selfcheck.Table)}.Check)
	},
}

// Handler returns the constructor of one function, for its lambda/main.go.
func Handler(name string) func(fn.Deps) any { return constructors[name] }

// Handlers returns the handler of every function.
func Handlers(d fn.Deps) map[string]any {
	out := make(map[string]any, len(constructors))
	for name, c := range constructors {
		out[name] = c(d)
	}
	return out
}

// Names lists every function's logical name.
func Names() []string {
	out := make([]string, 0, len(constructors))
	for name := range constructors {
		out = append(out, name)
	}
	return out
}
