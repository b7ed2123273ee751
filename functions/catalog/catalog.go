// Package catalog builds every function's handler by logical name. The functions'
// lambda/main.go and the in-process invoker use the same constructors, so a function
// behaves the same in both.
package catalog

import (
	"sort"
	"time"

	"github.com/taxflow/taxflow/functions/bankcheck"
	"github.com/taxflow/taxflow/functions/batch"
	"github.com/taxflow/taxflow/functions/casedocs"
	"github.com/taxflow/taxflow/functions/decisionpdf"
	"github.com/taxflow/taxflow/functions/declaration"
	"github.com/taxflow/taxflow/functions/delivery"
	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/functions/esigncheck"
	"github.com/taxflow/taxflow/functions/eventrelay"
	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/functions/identity"
	"github.com/taxflow/taxflow/functions/identityclear"
	"github.com/taxflow/taxflow/functions/identityconfirm"
	"github.com/taxflow/taxflow/functions/inactive"
	"github.com/taxflow/taxflow/functions/ledger"
	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/functions/obligations"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/payout"
	"github.com/taxflow/taxflow/functions/reminders"
	"github.com/taxflow/taxflow/functions/retention"
	"github.com/taxflow/taxflow/functions/selfcheck"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/functions/unblock"
	"github.com/taxflow/taxflow/functions/webhooks"
	"github.com/taxflow/taxflow/internal/audit"
	ibatch "github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/ndfl"
	"github.com/taxflow/taxflow/internal/trust"
)

var constructors = map[string]func(fn.Deps) any{
	contract.FnRecordTransition: func(d fn.Deps) any {
		return fn.Handler(stepsOf(d).Record)
	},
	contract.FnOutboxDeliver: func(d fn.Deps) any {
		return fn.Handler(delivery.Handler{DB: d.DynamoDB, Outbox: d.Config.Name(notify.Table), Now: time.Now,
			Channel: delivery.Deliveries{DB: d.DynamoDB, Table: d.Config.Name(delivery.Table), Now: time.Now}}.Sweep)
	},
	events.FnRelay: func(d fn.Deps) any {
		return fn.Handler(eventrelay.Handler{DB: d.DynamoDB, Events: d.Config.Name(events.Table), Feed: d.Config.Name(events.FeedTable),
			Owners: d.Config.Name(batch.OwnersTable), Now: time.Now}.Relay)
	},
	contract.FnBatch: func(d fn.Deps) any {
		return fn.Handler(batch.Handler{S3: d.S3, Bucket: d.Config.Name(document.Bucket), DB: d.DynamoDB, Owners: d.Config.Name(batch.OwnersTable),
			Journal: d.Config.Name(audit.Table), Events: d.Config.Name(events.Table), Limits: ibatch.DefaultLimits, Now: time.Now}.Handle)
	},
	contract.FnSelfCheck: func(d fn.Deps) any {
		return fn.Handler(selfcheck.Handler{DB: d.DynamoDB, Table: d.Config.Name(selfcheck.Table)}.Check)
	},
	contract.FnTaxpayerCheck: func(d fn.Deps) any {
		return fn.Handler(taxpayer.Handler{DB: d.DynamoDB, Table: d.Config.Name(taxpayer.Table)}.Check)
	},
	contract.FnOverpayment: func(d fn.Deps) any {
		return fn.Handler(overpayment.Handler{DB: d.DynamoDB, Table: d.Config.Name(overpayment.Table)}.Compute)
	},
	contract.FnDocumentStore: func(d fn.Deps) any {
		return fn.Handler(document.Handler{S3: d.S3, Bucket: d.Config.Name(document.Bucket)}.Store)
	},
	contract.FnPayout: func(d fn.Deps) any {
		t := payout.DynamoTreasury{DB: d.DynamoDB, Table: d.Config.Name(payout.Table), MaxTransfer: d.Config.TreasuryMaxTransfer}
		return fn.Handler(payout.Handler{DB: d.DynamoDB, Taxpayers: d.Config.Name(taxpayer.Table), Treasury: t, Ledger: ledgerOf(d)}.Handle)
	},
	contract.FnLedger: func(d fn.Deps) any {
		return fn.Handler(ledger.Handler{Ledger: ledgerOf(d)}.Handle)
	},
	contract.FnIdentityMatch: func(d fn.Deps) any {
		return fn.Handler(identity.Handler{DB: d.DynamoDB, Taxpayers: d.Config.Name(taxpayer.Table), S3: d.S3, Bucket: d.Config.Name(document.Bucket)}.Match)
	},
	contract.FnIdentityConfirm: func(d fn.Deps) any {
		return fn.Handler(identityconfirm.Handler{DB: d.DynamoDB, Taxpayers: d.Config.Name(taxpayer.Table)}.Confirm)
	},
	contract.FnESignCheck: func(d fn.Deps) any {
		return fn.Handler((&esigncheck.Handler{S3: d.S3, Bucket: d.Config.Name(trust.Bucket), DB: d.DynamoDB,
			Taxpayers: d.Config.Name(taxpayer.Table), Nonces: d.Config.Name(bankcheck.NonceTable)}).Check)
	},
	contract.FnBankCheck: func(d fn.Deps) any {
		return fn.Handler((&bankcheck.Handler{S3: d.S3, Bucket: d.Config.Name(trust.Bucket), DB: d.DynamoDB,
			Nonces: d.Config.Name(bankcheck.NonceTable)}).Check)
	},
	contract.FnUnblockCheck: func(d fn.Deps) any {
		return fn.Handler(unblock.Handler{DB: d.DynamoDB, Taxpayers: d.Config.Name(taxpayer.Table)}.Check)
	},
	contract.FnIdentityClear: func(d fn.Deps) any {
		return fn.Handler(identityclear.Handler{DB: d.DynamoDB, Taxpayers: d.Config.Name(taxpayer.Table)}.Clear)
	},
	contract.FnCaseDocumentsDelete: func(d fn.Deps) any {
		return fn.Handler(casedocs.Handler{S3: d.S3, Bucket: d.Config.Name(document.Bucket)}.Delete)
	},
	contract.FnDeclarationCheck: func(d fn.Deps) any {
		return fn.Handler(declaration.Handler{S3: d.S3, Bucket: d.Config.Name(document.Bucket), Rules: ndfl.DefaultRules()}.Check)
	},
	contract.FnDecisionPDF: func(d fn.Deps) any {
		return fn.Handler(decisionpdf.Handler{S3: d.S3, Bucket: d.Config.Name(document.Bucket)}.Generate)
	},
	contract.FnReminderSweep: func(d fn.Deps) any {
		return fn.Handler(reminders.Handler{DB: d.DynamoDB, Obligations: d.Config.Name(reminders.Table),
			Taxpayers: d.Config.Name(taxpayer.Table), Outbox: d.Config.Name(notify.Table)}.Sweep)
	},
	contract.FnObligationSweep: func(d fn.Deps) any {
		return fn.Handler(obligations.Handler{DB: d.DynamoDB, Ledger: d.Config.Name(overpayment.Table),
			Obligations: d.Config.Name(reminders.Table), Schedule: d.Config.Data.DueDates}.Sweep)
	},
	contract.FnInactiveSweep: func(d fn.Deps) any {
		return fn.Handler(inactive.Handler{DB: d.DynamoDB, Taxpayers: d.Config.Name(taxpayer.Table), Outbox: d.Config.Name(notify.Table)}.Sweep)
	},
	contract.FnWebhookDeliver: func(d fn.Deps) any {
		return fn.Handler((&webhooks.Handler{Store: WebhookStore(d), Sealer: webhooks.SealerFrom(d.Config.Temporal), AllowLoopback: d.Config.Webhook.AllowLoopback,
			Notify: notify.Handler{DB: d.DynamoDB, Table: d.Config.Name(notify.Table)}}).Round)
	},
	contract.FnRetentionSweep: func(d fn.Deps) any {
		return fn.Handler(retention.Handler{S3: d.S3, Bucket: d.Config.Name(document.Bucket)}.Sweep)
	},
}

// stepsOf writes a case's steps over the deployment's tables: record-transition's
// handler, and the step writer of the ledger's reservation and the payout's posting.
func stepsOf(d fn.Deps) *transition.Handler {
	return &transition.Handler{DB: d.DynamoDB, Journal: d.Config.Name(audit.Table), Cases: d.Config.Name(cases.Table),
		Outbox: d.Config.Name(notify.Table), Counts: d.Config.Name(transition.CountsTable), Owners: d.Config.Name(batch.OwnersTable),
		Events: d.Config.Name(events.Table)}
}

// ledgerOf is the refund ledger over the deployment's tables; it writes the case steps
// that ride in its transactions (the reservation's `approved`, the posting's `paid`).
func ledgerOf(d fn.Deps) ledger.Ledger {
	return ledger.Ledger{DB: d.DynamoDB, Table: d.Config.Name(ledger.Table), Entries: d.Config.Name(overpayment.Table), Steps: stepsOf(d)}
}

// WebhookStore is the webhook endpoints, deliveries and event feed of a deployment.
func WebhookStore(d fn.Deps) webhooks.DynamoStore {
	return webhooks.DynamoStore{DB: d.DynamoDB, Hooks: d.Config.Name(webhooks.Table), DeliveryTable: d.Config.Name(webhooks.DeliveriesTable),
		FeedTable: d.Config.Name(events.FeedTable)}
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

// Names lists every function's logical name: the closed set of the metrics' function label.
func Names() []string {
	out := make([]string, 0, len(constructors))
	for name := range constructors {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
