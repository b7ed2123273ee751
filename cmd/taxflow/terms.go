package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/workflows"
)

const termsUsage = `usage:
  taxflow terms recompute [--year Y]
        send every open refund and declaration the recompute_term update: each counts its running term
        again over the production calendar the workers have now (after a release that loads a year's
        decree); a moved term is a journal entry. --year Y first checks that this release has the decree
        of Y. Safe to run again: an unchanged term takes no step`

// openCasesQuery selects the cases whose term may still move (visibility: the search
// attributes of workflows/record.go).
const openCasesQuery = `ExecutionStatus = "Running" AND TaxflowProcess IN ("refund", "declaration")`

// termUpdateTimeout bounds one case's update: a case whose worker is away is counted as
// failed, and the next run takes it again.
const termUpdateTimeout = 30 * time.Second

// termsClient is what the command uses of the Temporal client.
type termsClient interface {
	ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	UpdateWorkflow(ctx context.Context, opts client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error)
}

// runTerms: taxflow terms recompute [--year Y]
func runTerms(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "recompute" {
		return errors.New(termsUsage)
	}
	year, err := termsYear(args[1:], calendar.Shared())
	if err != nil {
		return err
	}
	return withTemporal(ctx, func(a *app, c client.Client) error {
		return recomputeTerms(ctx, c, a.cfg.Temporal.Namespace, year, os.Stdout)
	})
}

// termsYear reads --year and refuses a year this release has no decree for: the workers
// run the same release, so nothing would move.
func termsYear(args []string, cal *calendar.Calendar) (int, error) {
	fs := flag.NewFlagSet("terms recompute", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	year := fs.Int("year", 0, "")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return 0, errors.New(termsUsage)
	}
	if *year != 0 && cal.Provisional(*year) {
		return 0, fmt.Errorf("--year: this release has no production-calendar decree for %d (decreed: %v); deploy the release that adds it first", *year, cal.Years())
	}
	return *year, nil
}

// termsTally counts the answers; Moved lists the cases whose term moved (opaque case ids
// and days: no personal data).
type termsTally struct {
	Changed, Unchanged, Refused, Failed int
	Moved                               []string
}

// recomputeTerms sends the update to every open case, page by page, and prints the counts.
func recomputeTerms(ctx context.Context, c termsClient, namespace string, year int, out io.Writer) error {
	var t termsTally
	var token []byte
	for {
		page, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, Query: openCasesQuery,
			NextPageToken: token, PageSize: 200})
		if err != nil {
			return fmt.Errorf("list open cases: %w", err)
		}
		for _, ex := range page.Executions {
			recomputeOne(ctx, c, ex.GetExecution().GetWorkflowId(), year, &t)
		}
		if token = page.NextPageToken; len(token) == 0 {
			break
		}
	}
	sort.Strings(t.Moved)
	for _, m := range t.Moved {
		_, _ = fmt.Fprintln(out, m)
	}
	_, _ = fmt.Fprintf(out, "changed %d, unchanged %d, refused %d, failed %d\n", t.Changed, t.Unchanged, t.Refused, t.Failed)
	if t.Failed > 0 {
		return fmt.Errorf("%d cases did not answer: run the command again", t.Failed)
	}
	return nil
}

// recomputeOne sends one case the update. A refusal (its term no longer matters) and a
// case that ended meanwhile count as refused; an error that tells nothing counts as failed
// and is not printed (it may quote the case).
func recomputeOne(ctx context.Context, c termsClient, id string, year int, t *termsTally) {
	ctx, cancel := context.WithTimeout(ctx, termUpdateTimeout)
	defer cancel()
	// the refund's and the declaration's update have the same name
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.RefundUpdateRecomputeTerm,
		WaitForStage: client.WorkflowUpdateStageCompleted})
	var res workflows.TermRecomputed
	if err == nil {
		err = h.Get(ctx, &res)
	}
	var app *temporal.ApplicationError
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &app) && app.Type() == fnerr.TypeConflict, errors.As(err, &nf): // refused, or ended (the server answers NotFound)
		t.Refused++
	case err != nil:
		t.Failed++
	case res.Changed:
		t.Changed++
		note := ""
		if year != 0 && !slices.Contains(res.Decreed, year) {
			note = fmt.Sprintf(" (not by the decree of %d)", year)
		}
		t.Moved = append(t.Moved, fmt.Sprintf("%s %s -> %s%s", id, res.Previous, res.DeadlineDay, note))
	default:
		t.Unchanged++
	}
}
