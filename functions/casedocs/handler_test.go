package casedocs

import (
	"context"
	"testing"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const caseID = "identity-0c6f6f9e-0000-4000-8000-000000000002"

// 152-FZ art. 21 p.5: the case's stored documents and waiting uploads are destroyed;
// another case's documents stay; a second run finds nothing left.
func TestDeleteRemovesOnlyTheCasesDocuments(t *testing.T) {
	s3 := storetest.NewS3()
	s3.Put("documents/"+caseID+"/passport", []byte("a"))
	s3.Put("documents/"+caseID+"/inn", []byte("b"))
	s3.Put("incoming/"+caseID+"/late", []byte("c"))
	other := "documents/identity-0c6f6f9e-0000-4000-8000-000000000003/passport"
	s3.Put(other, []byte("d"))
	s3.Put("documents/"+caseID+"x/passport", []byte("e")) // a longer id sharing the prefix
	h := Handler{S3: s3, Bucket: "documents"}
	res, err := h.Delete(context.Background(), contract.CaseDocumentsDeleteInput{CaseID: caseID})
	if err != nil || res.Deleted != 3 {
		t.Fatalf("%+v %v", res, err)
	}
	if len(s3.Objects) != 2 || s3.Objects[other] == nil {
		t.Fatalf("left %v", s3.Objects)
	}
	if res, err := h.Delete(context.Background(), contract.CaseDocumentsDeleteInput{CaseID: caseID}); err != nil || res.Deleted != 0 {
		t.Fatalf("again: %+v %v", res, err)
	}
}

func TestDeleteRefusesAnythingButACaseID(t *testing.T) {
	h := Handler{S3: storetest.NewS3(), Bucket: "documents"}
	for _, id := range []string{"", "identity-", "../documents", "identity-0c6f6f9e-0000-4000-8000-000000000002/../x"} {
		if _, err := h.Delete(context.Background(), contract.CaseDocumentsDeleteInput{CaseID: id}); err == nil {
			t.Errorf("%q accepted", id)
		}
	}
}
