package demo

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"net/http"
	"strings"

	"github.com/taxflow/taxflow/cmd/internal/drive"
	"github.com/taxflow/taxflow/cmd/internal/seed"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/workflows"
)

// identity walks a verification by documents: the integrator submits the taxpayer's data,
// the process asks for the passport, the integrator uploads a photo of it (a real JPEG,
// stored in S3), the automatic check matches it with the registry and the account is
// confirmed.
func (m *demo) identity() outcome {
	w := m.begin("identity", workflows.IdentityVerified)
	w.step("find a taxpayer to verify by documents")
	subj, err := m.d.Find(seed.IdentityDocuments)
	if err != nil {
		return w.fail(err)
	}
	w.step("start the verification")
	var created struct {
		CaseID string `json:"case_id"`
		Status string `json:"status"`
		Label  string `json:"label"`
	}
	body := drive.JSON(map[string]any{"method": contract.MethodDocuments, "person": subj.Identity.Person})
	if err := m.expect(http.StatusCreated, &created, "POST", "/v1/identity-verifications", m.keys.Integrator, body,
		"Idempotency-Key", newIdempotencyKey(), "Content-Type", "application/json"); err != nil {
		return w.fail(err)
	}
	w.o.caseID = created.CaseID
	w.show(created.Status, created.Label, "method documents: personal data, INN and SNILS submitted")

	read := func() (workflows.IdentityStatus, error) {
		var st workflows.IdentityStatus
		err := m.expect(http.StatusOK, &st, "GET", "/v1/identity-verifications/"+w.o.caseID, m.keys.Integrator, nil)
		return st, err
	}
	is := func(want string) func(workflows.IdentityStatus) bool {
		return func(st workflows.IdentityStatus) bool { return st.Status == want }
	}
	describe := func(st workflows.IdentityStatus) string { return st.Status + " " + strings.Join(st.Reasons, "; ") }

	w.step("wait for the request for the passport")
	st, err := poll(m, "the request for documents", read, is(workflows.IdentityNeedsDocuments), describe)
	if err != nil {
		return w.fail(err)
	}
	w.show(st.Status, st.Label, "a scan or photo of the passport is required")

	w.step("upload the passport photo")
	photo, err := passportPhoto()
	if err != nil {
		return w.fail(err)
	}
	var up struct {
		DocID string `json:"doc_id"`
		Type  string `json:"type"`
		Size  int64  `json:"size"`
	}
	if err := m.expect(http.StatusAccepted, &up, "POST", "/v1/identity-verifications/"+w.o.caseID+"/documents?doc_id=passport", m.keys.Integrator,
		photo, "Content-Type", "image/jpeg"); err != nil {
		return w.fail(err)
	}
	w.step("wait for the automatic check")
	if st, err = poll(m, "the verification to pass", read, is(workflows.IdentityVerified), describe); err != nil {
		return w.fail(err)
	}
	confirmed := ""
	if st.ConfirmedAt != nil {
		confirmed = st.ConfirmedAt.In(calendar.Moscow).Format("2006-01-02 15:04 MSK")
	}
	w.show(st.Status, st.Label, fmt.Sprintf("passport photo (%s, %d bytes) matched the registry; account confirmed at %s", up.Type, up.Size, confirmed))
	return w.o
}

// passportPhoto is a plain 1280×900 JPEG: large enough to be judged readable.
func passportPhoto() ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, 1280, 900))
	draw.Draw(img, img.Bounds(), &image.Uniform{color.RGBA{236, 228, 214, 255}}, image.Point{}, draw.Src)
	for _, r := range []image.Rectangle{image.Rect(80, 120, 400, 540), image.Rect(460, 140, 1180, 170), image.Rect(460, 220, 1000, 250),
		image.Rect(460, 300, 1100, 330), image.Rect(80, 760, 1200, 800)} {
		draw.Draw(img, r, &image.Uniform{color.RGBA{120, 110, 100, 255}}, image.Point{}, draw.Src)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		return nil, fmt.Errorf("make the passport photo: %w", err)
	}
	return buf.Bytes(), nil
}
