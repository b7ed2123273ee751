package docs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// SniffSize is how much of a file its type is judged on before any of it is stored:
// the magic bytes, or an XML document's first '<' after a byte-order mark and white
// space.
const SniffSize = 4 << 10

// tailSize is how much of a stream's end is kept for the completeness checks: a PDF's
// %%EOF is in its last 1 KB, a PNG's IEND in its last 64 bytes, and a DOCX's central
// directory (the list of its parts) is a few KB; 256 KB holds one of thousands of parts.
const tailSize = 256 << 10

// Stream checks a file while it is read, without holding it: NewStream judges the type
// on the first bytes, before any is handed on; reading passes the bytes through and keeps
// only the last ones; at the end, the read that would return io.EOF returns a *Rejection
// instead when the file is incomplete (a truncated PDF, a damaged DOCX, malformed XML) or
// over MaxSize. A reader that stores what it reads (an S3 upload) therefore fails, and
// stores nothing, whenever Check would have refused the same bytes.
type Stream struct {
	typ  Type
	src  io.Reader
	xml  *xmlCheck    // XML only: the decoder pulls the bytes (through src) into pending
	srcE error        // XML only: a failure to read the source (not a rejection)
	pend bytes.Buffer // XML only: bytes the decoder has read, not yet handed on
	n    int64
	tail []byte // the last bytes read: up to 2*tailSize, at least the last tailSize
	err  error  // sticky: io.EOF once the file is complete, or why it is not
	// judged: the end has been checked (finish), so io.EOF in err is the final answer.
	judged bool
}

// NewStream peeks at the first SniffSize bytes of r and refuses (a *Rejection) an empty
// file, an unknown type or one not allowed for p; nothing has been handed on then. Any
// other error is a failure to read r (an *http.MaxBytesError, say).
func NewStream(r io.Reader, p Purpose) (*Stream, error) {
	types, ok := allowed[p]
	if !ok {
		return nil, reject("unknown document purpose %q", p)
	}
	br := bufio.NewReaderSize(r, SniffSize)
	head, err := br.Peek(SniffSize)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read the start of the file: %w", err)
	}
	if len(head) == 0 {
		return nil, reject("the file is empty: choose the file again and re-upload it")
	}
	t, skip, err := sniff(head)
	if err != nil {
		return nil, err
	}
	accepted := false
	for _, a := range types {
		accepted = accepted || a == t
	}
	if !accepted {
		return nil, reject("a %s file is not accepted here; accepted: %v", t, types)
	}
	s := &Stream{typ: t, src: br}
	if t == XML {
		// The decoder starts at the '<' (as Check's does); the bytes before it still go on.
		s.pend.Write(head[:skip])
		if _, err := br.Discard(skip); err != nil {
			return nil, fmt.Errorf("read the start of the file: %w", err)
		}
		s.xml = newXMLCheck(io.TeeReader(readErr{br, &s.srcE}, &s.pend))
	}
	return s, nil
}

// Type is the type judged from the first bytes.
func (s *Stream) Type() Type { return s.typ }

// Size is how many bytes have been read so far (the file's size once Read has returned
// io.EOF).
func (s *Stream) Size() int64 { return s.n }

// Read hands on the file's bytes; see Stream.
func (s *Stream) Read(p []byte) (int, error) {
	for {
		if s.pend.Len() > 0 {
			n, _ := s.pend.Read(p)
			return n, s.account(p[:n])
		}
		if s.err == io.EOF && !s.judged {
			s.judged = true
			s.err = s.finish()
		}
		if s.err != nil {
			return 0, s.err
		}
		if s.xml != nil {
			done, err := s.xml.step()
			switch {
			case s.srcE != nil:
				s.err = s.srcE
			case err != nil:
				s.err = err
			case done:
				s.err = io.EOF
			}
			continue
		}
		n, err := s.src.Read(p)
		if err != nil {
			s.err = err
		}
		if n > 0 {
			return n, s.account(p[:n])
		}
	}
}

// account counts and keeps the tail of what is handed on; over MaxSize it refuses the
// file.
func (s *Stream) account(b []byte) error {
	s.n += int64(len(b))
	if s.n > MaxSize {
		s.err = reject("the file is over %d bytes; at most 10 MB is accepted: compress or split it", MaxSize)
		return s.err
	}
	if len(s.tail)+len(b) > 2*tailSize {
		keep := s.tail[max(0, len(s.tail)-tailSize):]
		s.tail = append(s.tail[:0], keep...)
	}
	if len(b) > tailSize {
		b = b[len(b)-tailSize:]
	}
	s.tail = append(s.tail, b...)
	return nil
}

// finish judges the end of a file read whole: io.EOF when it is complete.
func (s *Stream) finish() error {
	switch s.typ {
	case DOCX:
		at := &tailAt{tail: s.tail, off: s.n - int64(len(s.tail))}
		if _, err := docxAt(at, s.n); err != nil {
			if at.short {
				return reject("the DOCX file lists more parts than can be checked (its directory is over %d KB): save it again with fewer embedded objects", tailSize>>10)
			}
			return err
		}
	case PDF, JPEG, PNG:
		if err := endsComplete(s.typ, s.tail); err != nil {
			return err
		}
	}
	// XML: the decoder has read the document to its end (Read's step), so it is complete.
	return io.EOF
}

// readErr keeps the first error other than io.EOF that r returns, so a failure to read
// the upload is told apart from malformed XML (the decoder reports both).
type readErr struct {
	r   io.Reader
	err *error
}

func (e readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && *e.err == nil {
		*e.err = err
	}
	return n, err
}

// tailAt serves the last bytes of a file, at their offsets in it, to archive/zip, which
// reads only the end of an archive (its directory) to list the parts.
type tailAt struct {
	tail  []byte
	off   int64 // where tail starts in the file
	short bool  // a read reached before tail
}

func (t *tailAt) ReadAt(p []byte, off int64) (int, error) {
	if off < t.off {
		t.short = true
		return 0, errors.New("before the kept end of the file")
	}
	i := off - t.off
	if i >= int64(len(t.tail)) {
		return 0, io.EOF
	}
	n := copy(p, t.tail[i:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
