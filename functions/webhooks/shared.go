package webhooks

import hooks "github.com/taxflow/taxflow/internal/webhooks"

// What the API shares with the delivery function — the endpoint and delivery store, the
// address rules, the sealed secrets, the policy — lives in internal/webhooks, since the API
// imports no function (internal/layers). These names keep the function's code reading as
// it did.
type (
	Attempt     = hooks.Attempt
	Delivery    = hooks.Delivery
	DynamoStore = hooks.DynamoStore
	Endpoint    = hooks.Endpoint
	KeySealer   = hooks.KeySealer
	MemoryStore = hooks.MemoryStore
	Resolver    = hooks.Resolver
	Sealer      = hooks.Sealer
	Store       = hooks.Store
)

const (
	SendTimeout     = hooks.SendTimeout
	MaxBody         = hooks.MaxBody
	Table           = hooks.Table
	DeliveriesTable = hooks.DeliveriesTable
	StatusEnabled   = hooks.StatusEnabled
	StatusDisabled  = hooks.StatusDisabled
	StatusDeleted   = hooks.StatusDeleted
	Pending         = hooks.Pending
	Delivered       = hooks.Delivered
	Failed          = hooks.Failed
	SecretPrefix    = hooks.SecretPrefix
)

var (
	ErrConflict    = hooks.ErrConflict
	ErrAddress     = hooks.ErrAddress
	AddressAllowed = hooks.AddressAllowed
	CheckURL       = hooks.CheckURL
	NewClient      = hooks.NewClient
	NewMemoryStore = hooks.NewMemoryStore
	NewRev         = hooks.NewRev
	NewSecret      = hooks.NewSecret
	Normalize      = hooks.Normalize
	UpdateEndpoint = hooks.UpdateEndpoint
	SealerFrom     = hooks.SealerFrom
)
