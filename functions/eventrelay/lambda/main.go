// Command lambda runs the event-relay function under the Lambda runtime.
package main

import (
	"github.com/taxflow/taxflow/functions/catalog"
	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/events"
)

func main() { fn.Start(catalog.Handler(events.FnRelay)) }
