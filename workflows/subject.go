package workflows

import (
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// childAttributes are the search attributes a child case starts with: its own, and the
// parent's TaxflowSubject. A workflow never holds the subject key, so it cannot hash
// the INN itself; the subject it passes on is the one its own starter (the API) set, so
// a search for the taxpayer's cases finds the child under the same key version as the
// parent. A parent started without a subject passes none.
func childAttributes(ctx workflow.Context, own ...temporal.SearchAttributeUpdate) temporal.SearchAttributes {
	if subject, ok := workflow.GetTypedSearchAttributes(ctx).GetKeyword(SearchSubject); ok && subject != "" {
		own = append(own, SearchSubject.ValueSet(subject))
	}
	return temporal.NewSearchAttributes(own...)
}
