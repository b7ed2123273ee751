// Command lambda runs the webhook-deliver function under the Lambda runtime.
package main

import (
	"github.com/taxflow/taxflow/functions/catalog"
	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/contract"
)

func main() { fn.Start(catalog.Handler(contract.FnWebhookDeliver)) }
