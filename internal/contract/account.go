package contract

import "time"

// Functions of account lock and unblock.
const (
	FnUnblockCheck  = "unblock-check"
	FnIdentityClear = "identity-clear"
)

// AccountEvent is a login outcome or a security event from the authentication system.
type AccountEvent struct {
	EventID string    `json:"event_id"`
	Type    string    `json:"type"`
	At      time.Time `json:"at,omitempty"`
}

// Account event types.
const (
	EventLoginFailed    = "login_failed"
	EventLoginSucceeded = "login_succeeded"
	EventSuspicious     = "suspicious_activity" // [001:177]
	EventDataIncorrect  = "data_incorrect"      // incomplete or incorrect data [004:46]
)

// UnblockCheckInput is a self-service unblock request: INN, full name and passport series [002:161-163].
type UnblockCheckInput struct {
	INN            string `json:"inn"`
	FullName       string `json:"full_name"`
	PassportSeries string `json:"passport_series"`
}

// UnblockCheckResult says whether the data matches the registry.
type UnblockCheckResult struct {
	Match bool `json:"match"`
}

// IdentityClearInput clears the confirmed mark after an unblock [004:27].
type IdentityClearInput struct {
	INN    string `json:"inn"`
	CaseID string `json:"case_id"`
}
