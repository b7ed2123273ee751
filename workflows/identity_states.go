package workflows

// identityStates is the identity verification read as a state machine (states.go). The
// validators of its updates, and the main coroutine when it takes the old signals, ask it
// whether the case's status takes the message; a case that has taken its end refuses
// every message before (lateFor).
var identityStates = StateMachine{
	Process: "identity", Workflow: "IdentityVerification", Source: "workflows/identity.go",
	Statuses: []string{IdentityReceived, IdentityNeedsDocuments, IdentityChecking, IdentityManualReview,
		IdentityVerified, IdentityRejected, IdentityExpired, IdentityClosed},
	Final:  []string{IdentityVerified, IdentityRejected, IdentityExpired, IdentityClosed},
	Labels: IdentityLabels,
	Rows: []StateRow{
		{From: []string{Start}, Via: Via{Kind: ViaStart}, To: []string{IdentityReceived},
			Who: "integrator (identity:write), or an account's identity unblock"},
		{From: []string{IdentityReceived}, Via: step("not eligible"), When: "no consent on record, or the INN or SNILS not linked",
			To: []string{IdentityRejected}, Who: "system"},
		{From: []string{IdentityReceived}, Via: step("no upload yet"), When: "documents method",
			To: []string{IdentityNeedsDocuments}, Who: "system"},
		{From: []string{IdentityReceived, IdentityNeedsDocuments}, Via: step("check starts"), When: "an attempt counted",
			To: []string{IdentityChecking}, Who: "system"},
		{From: []string{IdentityChecking}, Via: step("matched"), To: []string{IdentityVerified}, Who: "system"},
		{From: []string{IdentityChecking}, Via: step("mismatch"), When: "attempts left, the taxpayer told why",
			To: []string{IdentityNeedsDocuments}, Who: "system"},
		{From: []string{IdentityChecking}, Via: step("refused"), When: "a mismatch with no attempt left, or the evidence refused outright",
			To: []string{IdentityRejected}, Who: "system"},
		{From: []string{IdentityChecking}, Via: step("inconclusive"), When: "or the video method, or a bank check that could not complete",
			To: []string{IdentityManualReview}, Who: "system"},
		{From: []string{IdentityNeedsDocuments}, Via: update(IdentityUpdateResubmit), Who: "integrator (identity:write)"},
		{From: []string{IdentityNeedsDocuments}, Via: signal(IdentitySignalResubmit), When: "cases started before the resubmission update",
			Who: "integrator (identity:write)"},
		{From: []string{Start, IdentityReceived, IdentityNeedsDocuments}, Via: update(IdentityUpdateDocument), When: "documents method",
			Who: "integrator (identity:write)"},
		{From: []string{Start, IdentityReceived, IdentityNeedsDocuments, IdentityChecking}, Via: signal(IdentitySignalDocument),
			When: "cases started before the add_document update", Who: "integrator (identity:write)"},
		{From: []string{IdentityNeedsDocuments}, Via: timer("re-submission wait (30 d)"), To: []string{IdentityExpired}, Who: "system"},
		{From: []string{IdentityManualReview}, Via: update(IdentityUpdateReview), When: "consent standing",
			To: []string{IdentityVerified, IdentityRejected}, Who: "reviewer (identity:review)"},
		{From: []string{IdentityManualReview}, Via: timer("review SLA (1 working day)"), When: "escalated", Who: "system"},
		{From: []string{IdentityManualReview}, Via: timer("escalated review (30 d)"), To: []string{IdentityExpired}, Who: "system"},
		{From: []string{IdentityReceived, IdentityNeedsDocuments, IdentityChecking, IdentityManualReview}, Via: signal(IdentitySignalConsent),
			When: "withdrawn, processing pauses, given again, it resumes", Who: "integrator (consent:write), to every case of the person"},
		{From: []string{IdentityReceived, IdentityNeedsDocuments, IdentityChecking, IdentityManualReview}, Via: timer("consent wait (29 d)"),
			When: "consent not given again, the documents destroyed", To: []string{IdentityClosed}, Who: "system"},
	},
}
