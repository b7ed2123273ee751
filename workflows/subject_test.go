package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/internal/contract"
)

// What the API sets on a case it starts: workflows never compute it (they hold no key).
const parentSubject = "s2.0123456789abcdef0123456789abcdef"

// childSeen is what a child case saw of its own search attributes when it started.
type childSeen struct {
	started         bool
	subject, status string
	hasSubject      bool
}

func seen(ctx workflow.Context) childSeen {
	attrs := workflow.GetTypedSearchAttributes(ctx)
	subj, ok := attrs.GetKeyword(SearchSubject)
	status, _ := attrs.GetKeyword(SearchStatus)
	return childSeen{started: true, subject: subj, hasSubject: ok, status: status}
}

// The identity re-verification an account starts carries the account's TaxflowSubject,
// so a search for the taxpayer's cases (consent withdrawn: every running verification
// is told) finds it.
func TestAccountIdentityChildCarriesParentSubject(t *testing.T) {
	h := newAccHarness(t)
	if err := h.env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(
		SearchProcess.ValueSet("account"), SearchStatus.ValueSet(AccountActive), SearchSubject.ValueSet(parentSubject))); err != nil {
		t.Fatal(err)
	}
	var child childSeen
	h.env.OnWorkflow(IdentityVerification, mock.Anything, mock.Anything).Return(func(ctx workflow.Context, in IdentityWorkflowInput) (IdentityStatus, error) {
		child = seen(ctx)
		return IdentityStatus{CaseID: in.CaseID, Status: IdentityVerified}, nil
	})
	h.events(time.Minute, contract.EventSuspicious, 1)
	in := IdentityWorkflowInput{CaseID: "identity-0c6f6f9e-0000-4000-8000-0000000000ab", Method: contract.MethodBank,
		Submission: IdentitySubmission{Person: person()}, Policy: DefaultIdentityPolicy()}
	h.update(2*time.Minute, AccountUpdateIdentity, in, false)
	h.expect(time.Hour, func(st AccountStatus) {
		if st.Status != AccountActive {
			t.Errorf("after the child verified: %s", st.Status)
		}
	})
	h.run(accInput(), 2*time.Hour)
	if !child.started {
		t.Fatal("the identity child never started")
	}
	if !child.hasSubject || child.subject != parentSubject || child.status != IdentityReceived {
		t.Fatalf("child attributes: subject %q (set %v), status %q; want the parent's %q", child.subject, child.hasSubject, child.status, parentSubject)
	}
}

// The refund a declaration's decision starts carries the declaration's TaxflowSubject.
func TestDeclarationRefundChildCarriesParentSubject(t *testing.T) {
	h := newDeclHarness(t)
	if err := h.env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(
		SearchProcess.ValueSet("declaration"), SearchStatus.ValueSet(DeclarationReceived), SearchSubject.ValueSet(parentSubject))); err != nil {
		t.Fatal(err)
	}
	var child childSeen
	h.env.OnWorkflow(Refund, mock.Anything, mock.Anything).Return(func(ctx workflow.Context, in RefundWorkflowInput) (RefundStatus, error) {
		child = seen(ctx)
		return RefundStatus{CaseID: in.CaseID}, nil
	})
	h.update(24*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "проверено", Inspector: "insp-1"}, false)
	st := h.run(h.input(goodDeclaration(), true))
	if st.RefundCase == "" || !child.started {
		t.Fatalf("no refund started: %+v", st)
	}
	if !child.hasSubject || child.subject != parentSubject || child.status != RefundReceived {
		t.Fatalf("child attributes: subject %q (set %v), status %q; want the parent's %q", child.subject, child.hasSubject, child.status, parentSubject)
	}
}

// A parent started without a subject (a case from before it existed) passes none: a
// child never carries an empty or made-up subject.
func TestChildOfParentWithoutSubjectCarriesNone(t *testing.T) {
	h := newDeclHarness(t)
	var child childSeen
	h.env.OnWorkflow(Refund, mock.Anything, mock.Anything).Return(func(ctx workflow.Context, in RefundWorkflowInput) (RefundStatus, error) {
		child = seen(ctx)
		return RefundStatus{CaseID: in.CaseID}, nil
	})
	h.update(24*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "проверено", Inspector: "insp-1"}, false)
	h.run(h.input(goodDeclaration(), true))
	if !child.started || child.hasSubject {
		t.Fatalf("child %+v: want started, without a subject", child)
	}
}
