package api

import (
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/awsclient"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/registry"
	"github.com/taxflow/taxflow/internal/temporalclient"
	"github.com/taxflow/taxflow/internal/webhooks"
	"github.com/taxflow/taxflow/workflows"
)

// New builds the API from configuration; `taxflow api` and the API's Lambda both use it.
// The caller has checked cfg.RequireSubjectKey: the API makes subjects.
func New(cfg config.Config, clients *awsclient.Clients, tc client.Client, log zerolog.Logger) *Server {
	s := &Server{
		Temporal:    tc,
		Keys:        Keys(cfg, clients),
		S3:          clients.S3,
		DB:          clients.DynamoDB,
		Bucket:      cfg.Name(contract.DocumentsBucket),
		Taxpayers:   cfg.Name(registry.Table),
		Ledger:      cfg.Name(contract.LedgerTable),
		AuditTable:  cfg.Name(audit.Table),
		Owners:      cfg.Name(OwnersTable),
		Cases:       cfg.Name(cases.Table),
		Events:      cfg.Name(events.FeedTable),
		Idempotency: cfg.Name(IdempotencyTable),
		TaskQueue:   cfg.Temporal.TaskQueue,
		Policy:      RefundPolicy(cfg.Refund),
		IdentityPolicy: workflows.IdentityPolicy{MaxAttempts: cfg.Identity.MaxAttempts, ResubmitWait: cfg.Identity.ResubmitWait,
			ReviewSLAWorkingDays: cfg.Identity.ReviewSLAWorkingDays, ConsentWait: cfg.Identity.ConsentWait},
		Subjects:      cfg.Subject,
		AccountPolicy: accountPolicy(cfg.Account),
		DeclarationPolicy: workflows.DeclarationPolicy{ReviewMonths: cfg.Declaration.ReviewMonths, ReminderBefore: cfg.Declaration.ReminderBefore,
			AppealMonths: cfg.Declaration.AppealMonths, ExplanationDays: cfg.Declaration.ExplanationDays, DocumentDays: cfg.Declaration.DocumentDays,
			Refund: RefundPolicy(cfg.Refund)},
		Webhooks: WebhookConfig{Store: webhooks.DynamoStore{DB: clients.DynamoDB, Hooks: cfg.Name(webhooks.Table),
			DeliveryTable: cfg.Name(webhooks.DeliveriesTable), FeedTable: cfg.Name(events.FeedTable)},
			Sealer: webhooks.SealerFrom(cfg.Temporal), Policy: WebhookPolicy(cfg.Webhook)},
		Log:   log.With().Str("component", "api").Logger(),
		Staff: StaffAccounts(cfg, clients),
	}
	// Without the payload keys the console shows no identifiers; the API itself does not
	// need them (Temporal's client encrypts with the same configuration).
	if dc, err := temporalclient.DataConverter(cfg.Temporal); err == nil {
		s.DataConverter = dc
	}
	return s
}

// StaffAccounts is the staff account and session store of a deployment.
func StaffAccounts(cfg config.Config, clients *awsclient.Clients) *StaffStore {
	return &StaffStore{DB: clients.DynamoDB, Accounts: cfg.Name(StaffTable), Sessions: cfg.Name(SessionsTable)}
}

// Keys is the API key store of a deployment.
func Keys(cfg config.Config, clients *awsclient.Clients) DynamoKeys {
	return DynamoKeys{DB: clients.DynamoDB, Table: cfg.Name("apikeys")}
}

// RefundPolicy turns the configured refund rules into the policy new cases start with.
func RefundPolicy(r config.Refund) workflows.RefundPolicy {
	p := workflows.DefaultRefundPolicy()
	p.DeadlineDays, p.ReminderBefore, p.DocumentWait, p.RequisitesDays = r.DeadlineDays, r.ReminderBefore, r.DocumentWait, r.RequisitesDays
	p.AutoApproveMax = r.AutoApproveMax
	return p
}

func accountPolicy(a config.Account) workflows.AccountPolicy {
	p := workflows.DefaultAccountPolicy()
	p.Threshold, p.LockPeriods, p.SelfServiceTries, p.SpecialistSLA = a.Threshold, a.LockPeriods, a.SelfServiceTries, a.SpecialistSLA
	p.SpecialistAfter = a.SpecialistAfter
	if a.ContinueAfter > 0 {
		p.ContinueAfter = a.ContinueAfter
	}
	return p
}
