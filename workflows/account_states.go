package workflows

// accountStates is the account's lock read as a state machine (states.go). The
// validators of its updates, and the main coroutine when it acts on them, ask it whether
// the lock offers the path (account.locked); the tries left, a child already running or a
// specialist already asked are checked beside it. An account has no final status: its
// workflow lives as long as the account, continuing as new.
var accountStates = StateMachine{
	Process: "account", Workflow: "Account", Source: "workflows/account.go",
	Statuses: []string{AccountActive, AccountAutoUnlockPending, AccountAwaitingIdentity, AccountAwaitingSpecialist},
	Labels:   AccountLabels,
	Rows: []StateRow{
		{From: []string{Start}, Via: Via{Kind: ViaStart}, When: "the account's first event (signal-with-start)",
			To: []string{AccountActive}, Who: "authentication system (accounts:events), or a batch line"},
		{From: []string{AccountActive, AccountAutoUnlockPending, AccountAwaitingIdentity, AccountAwaitingSpecialist},
			Via: signal(AccountSignalEvent), When: "a login or an event that changes no lock, or an id already seen",
			Who: "authentication system (accounts:events)"},
		{From: []string{AccountActive}, Via: signal(AccountSignalEvent), When: "more than 5 failed logins in a row (a lock of 15 min, then 1 h)",
			To: []string{AccountAutoUnlockPending}, Who: "authentication system (accounts:events)"},
		{From: []string{AccountActive}, Via: signal(AccountSignalEvent), When: "the 3rd lock within 24 h",
			To: []string{AccountAwaitingSpecialist}, Who: "authentication system (accounts:events)"},
		{From: []string{AccountActive, AccountAutoUnlockPending}, Via: signal(AccountSignalEvent), When: "suspicious activity",
			To: []string{AccountAwaitingIdentity}, Who: "authentication system (accounts:events)"},
		{From: []string{AccountActive, AccountAutoUnlockPending, AccountAwaitingIdentity}, Via: signal(AccountSignalEvent),
			When: "incorrect data", To: []string{AccountAwaitingSpecialist}, Who: "authentication system (accounts:events)"},
		{From: []string{AccountAutoUnlockPending}, Via: timer("temporary lock"), When: "lifts by itself", To: []string{AccountActive}, Who: "system"},
		{From: []string{AccountAutoUnlockPending}, Via: update(AccountUpdateSelfService), When: "matched, or the last try failed",
			To: []string{AccountActive, AccountAwaitingSpecialist}, Who: "integrator for the taxpayer (accounts:unblock)"},
		{From: []string{AccountAwaitingIdentity}, Via: update(AccountUpdateIdentity), When: "starts an IdentityVerification child",
			Who: "integrator for the taxpayer (accounts:unblock)"},
		{From: []string{AccountAwaitingIdentity}, Via: step("identity verified again"), When: "the IdentityVerification child ended verified",
			To: []string{AccountActive}, Who: "system"},
		{From: []string{AccountAutoUnlockPending, AccountAwaitingIdentity, AccountAwaitingSpecialist}, Via: update(AccountUpdateSpecialist),
			When: "due in 24 h", Who: "integrator for the taxpayer (accounts:unblock)"},
		{From: []string{AccountAutoUnlockPending, AccountAwaitingIdentity, AccountAwaitingSpecialist}, Via: update(AccountUpdateDecision),
			When: "unblocked, or refused and still locked", To: []string{AccountActive}, Who: "specialist (accounts:specialist)"},
		{From: []string{AccountAutoUnlockPending, AccountAwaitingIdentity, AccountAwaitingSpecialist}, Via: timer("specialist SLA (24 h)"),
			When: "escalated", Who: "system"},
		{From: []string{AccountAwaitingIdentity, AccountAwaitingSpecialist}, Via: timer("locked reminder (30 d)"), When: "the taxpayer reminded",
			Who: "system"},
	},
}
