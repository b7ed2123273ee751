package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/registry"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// RequisitesVerdict is the body of POST /v1/taxpayers/{inn}/requisites/verification: the
// back office's word on a pending change of bank requisites [004:113-116].
type RequisitesVerdict struct {
	Verified *bool  `json:"verified"`
	Reason   string `json:"reason"`
}

// HeldRefund is one refund the verdict reached.
type HeldRefund struct {
	CaseID   string `json:"case_id"`
	Status   string `json:"status"`
	BankHold bool   `json:"bank_hold"`
}

// CheckPayoutAccount is the bank check of requisites a refund may be paid to: the BIK,
// the account's control key against it (domain.md, identifiers), a rouble (810) account
// of an individual (40817, 40820, or a deposit 42301-42307) (domain.md, rules added after
// review). Field names are prefixed with prefix.
func CheckPayoutAccount(prefix string, b contract.BankRequisites) []domain.FieldError {
	var errs []domain.FieldError
	if err := domain.ValidateBIK(prefix+"bik", b.BIK); err != nil {
		errs = append(errs, err.(domain.FieldError))
	}
	if err := domain.ValidateAccount(prefix+"account", b.Account, b.BIK); err != nil {
		return append(errs, err.(domain.FieldError))
	}
	if b.Account[5:8] != "810" {
		errs = append(errs, domain.FieldError{Field: prefix + "account", Reason: "not a rouble (810) account"})
	} else if !strings.HasPrefix(b.Account, "40817") && !strings.HasPrefix(b.Account, "40820") &&
		!(strings.HasPrefix(b.Account, "4230") && b.Account[4] >= '1' && b.Account[4] <= '7') {
		errs = append(errs, domain.FieldError{Field: prefix + "account", Reason: "not an account of an individual (40817, 40820 or 42301-42307)"})
	}
	return errs
}

// verifyRequisites records the back office's verdict on a taxpayer's pending change of
// bank requisites and releases the refunds it held. Verified: the change passes the
// bank check and becomes the verified account. Rejected: the change is dropped (the
// account verified before, if any, stays). Then every running refund of the taxpayer
// that holds its payout gets the requisites update: each checks the registry again and
// answers whether it is released; a refund that holds nothing refuses it and is skipped.
func (s *Server) verifyRequisites(c *call[RequisitesVerdict]) (reply, error) {
	req, inn := c.Body, c.INN
	tp, found, err := registry.Lookup(c.ctx(), s.DB, s.Taxpayers, inn)
	if err != nil {
		return reply{}, unavailable("read registry", err)
	}
	if !found {
		return reply{}, refuse(http.StatusNotFound, "not_found", "no taxpayer with this INN in the registry")
	}
	if tp.PendingBank == nil {
		return reply{}, refuse(http.StatusConflict, "conflict", "no change of bank requisites is pending for this taxpayer")
	}
	if *req.Verified {
		if errs := CheckPayoutAccount("pending_bank.", *tp.PendingBank); len(errs) > 0 {
			return reply{}, refuse(http.StatusUnprocessableEntity, "requisites_refused",
				"the pending requisites fail the bank check; reject the change instead", errs...)
		}
	}
	if err := s.settleRequisites(c.ctx(), inn, *tp.PendingBank, *req.Verified); errors.Is(err, errRequisitesMoved) {
		return reply{}, refuse(http.StatusConflict, "conflict", "the pending change was replaced meanwhile; check it again")
	} else if err != nil {
		return reply{}, unavailable("record requisites", err)
	}
	held, skipped, err := s.releaseHeldRefunds(c.ctx(), inn, workflows.RefundRequisites{Verified: *req.Verified, Reason: req.Reason, By: c.who().ID})
	if err != nil {
		return reply{}, unavailable("release held refunds", err)
	}
	return okReply(map[string]any{"verified": *req.Verified, "refunds": held, "refunds_not_held": skipped}), nil
}

func (req RequisitesVerdict) check() error {
	switch {
	case req.Verified == nil:
		return badField(domain.FieldError{Field: "verified", Reason: "must be true or false"})
	case !*req.Verified && strings.TrimSpace(req.Reason) == "":
		return badField(domain.FieldError{Field: "reason", Reason: "a rejected change must say why"})
	}
	return reasonFits(req.Reason)
}

var errRequisitesMoved = errors.New("the pending requisites changed")

// settleRequisites writes the verdict: the pending change becomes the verified account,
// or is dropped; conditional on the pending change being the one that was checked.
func (s *Server) settleRequisites(ctx context.Context, inn string, pending contract.BankRequisites, verified bool) error {
	update := "REMOVE #pb"
	values := map[string]types.AttributeValue{":bik": store.S(pending.BIK), ":acc": store.S(pending.Account)}
	if verified {
		av, err := store.Marshal(pending)
		if err != nil {
			return err
		}
		update = "SET #b = :p REMOVE #pb"
		values[":p"] = &types.AttributeValueMemberM{Value: av}
	}
	names := map[string]string{"#pb": "pending_bank", "#bik": "bik", "#acc": "account"}
	if verified {
		names["#b"] = "bank"
	}
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.Taxpayers),
		Key:                       map[string]types.AttributeValue{"inn": store.S(inn)},
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("#pb.#bik = :bik AND #pb.#acc = :acc"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if store.IsConditionFailed(err) {
		return errRequisitesMoved
	}
	if err != nil {
		return fmt.Errorf("update registry: %w", err)
	}
	return nil
}

// releaseHeldRefunds sends the requisites update to every running refund of the taxpayer
// (found by the keyed hash of the INN, never the INN).
func (s *Server) releaseHeldRefunds(ctx context.Context, inn string, msg workflows.RefundRequisites) ([]HeldRefund, int, error) {
	query := fmt.Sprintf("TaxflowProcess = 'refund' AND %s AND ExecutionStatus = 'Running'", s.subjectQuery(inn))
	held := []HeldRefund{}
	skipped := 0
	var token []byte
	for {
		page, err := s.Temporal.ListWorkflow(ctx, &listRequest{Query: query, NextPageToken: token, PageSize: 200})
		if err != nil {
			return nil, 0, err
		}
		for _, ex := range page.Executions {
			id := ex.Execution.WorkflowId
			h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.RefundUpdateRequisites,
				Args: []any{msg}, WaitForStage: client.WorkflowUpdateStageCompleted})
			var st workflows.RefundStatus
			if err == nil {
				err = h.Get(ctx, &st)
			}
			var app *temporal.ApplicationError
			var nf *serviceerror.NotFound
			switch {
			case errors.As(err, &app) && app.Type() == fnerr.TypeConflict, errors.As(err, &nf):
				skipped++ // holds no payout for requisites, or has just finished
				continue
			case err != nil:
				return nil, 0, fmt.Errorf("update %s: %w", id, err)
			}
			held = append(held, HeldRefund{CaseID: id, Status: st.Status, BankHold: st.BankHold})
		}
		if token = page.NextPageToken; len(token) == 0 {
			return held, skipped, nil
		}
	}
}
