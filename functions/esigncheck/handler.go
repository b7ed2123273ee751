// Package esigncheck checks a qualified e-signature certificate for a taxpayer against
// the trusted authorities and revocation list kept in the trust anchors' bucket
// (internal/trust: esign/roots.pem, esign/crl.der), which no function may write.
package esigncheck

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/esign"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/trust"
)

// Trust material keys in the trust anchors' bucket.
const (
	RootsKey = trust.RootsKey
	CRLKey   = trust.CRLKey
)

// Handler checks certificates. Trust material is cached for a few minutes per instance.
type Handler struct {
	S3     document.S3
	Bucket string // the deployed trust.Bucket

	mu      sync.Mutex
	trust   esign.Trust
	fetched time.Time
}

const trustTTL = 5 * time.Minute

// Check answers whether the certificate identifies the taxpayer.
func (h *Handler) Check(ctx context.Context, in contract.ESignCheckInput) (contract.ESignCheckResult, error) {
	switch {
	case len(in.Certificate) == 0:
		return contract.ESignCheckResult{}, fnerr.Invalid("certificate", "must be the certificate file (PEM or DER)")
	case len(in.Certificate) > 64<<10:
		return contract.ESignCheckResult{}, fnerr.Invalid("certificate", "larger than 64 KB: not a certificate")
	case in.At.IsZero():
		return contract.ESignCheckResult{}, fnerr.Invalid("at", "must be set")
	}
	snils, err := domain.NormalizeSNILS("snils", in.SNILS)
	if err != nil {
		return contract.ESignCheckResult{}, fnerr.Invalid("snils", err.(domain.FieldError).Reason)
	}
	cert, err := esign.Parse(in.Certificate)
	if err != nil {
		return contract.ESignCheckResult{Valid: false, Reason: err.Error()}, nil
	}
	trust, err := h.load(ctx)
	if err != nil {
		return contract.ESignCheckResult{}, err
	}
	if err := esign.Verify(cert, trust, in.INN, snils, in.At); err != nil {
		if esign.IsRefusal(err) {
			return contract.ESignCheckResult{Valid: false, Reason: err.Error()}, nil
		}
		if esign.IsUnknown(err) {
			return contract.ESignCheckResult{Valid: false, Inconclusive: true, Reason: err.Error()}, nil
		}
		return contract.ESignCheckResult{}, err
	}
	return contract.ESignCheckResult{Valid: true}, nil
}

func (h *Handler) load(ctx context.Context) (esign.Trust, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.trust.Roots != nil && time.Since(h.fetched) < trustTTL {
		return h.trust, nil
	}
	roots, err := h.get(ctx, RootsKey)
	if err != nil || roots == nil {
		return esign.Trust{}, fmt.Errorf("no trusted roots at s3://%s/%s: %w", h.Bucket, RootsKey, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(roots) {
		return esign.Trust{}, fmt.Errorf("s3://%s/%s holds no PEM certificate", h.Bucket, RootsKey)
	}
	t := esign.Trust{Roots: pool}
	if der, err := h.get(ctx, CRLKey); err != nil {
		return esign.Trust{}, err
	} else if der != nil {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return esign.Trust{}, fmt.Errorf("s3://%s/%s: %w", h.Bucket, CRLKey, err)
		}
		t.CRLs = append(t.CRLs, crl)
	}
	h.trust, h.fetched = t, time.Now()
	return t, nil
}

// get reads an object; nil, nil when it does not exist.
func (h *Handler) get(ctx context.Context, key string) ([]byte, error) {
	obj, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &h.Bucket, Key: &key})
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = obj.Body.Close() }() // a reader: what was read is all that is needed
	return io.ReadAll(io.LimitReader(obj.Body, trust.MaxSize))
}
