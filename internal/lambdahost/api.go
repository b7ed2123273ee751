package lambdahost

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Limits AWS applies and the host enforces.
const (
	maxSyncPayload = 6 << 20  // request and response of a synchronous invocation
	maxZipUpload   = 70 << 20 // direct upload of a deployment package (base64 of 50 MB)
)

// Handler serves the Lambda API (/2015-03-31/...), the Runtime API (/i/{instance}/2018-06-01/...)
// and /health.
func (h *Host) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "functions": len(h.List())})
	})
	mux.HandleFunc("POST /2015-03-31/functions", h.createFunction)
	mux.HandleFunc("GET /2015-03-31/functions", h.listFunctions)
	mux.HandleFunc("GET /2015-03-31/functions/", h.listFunctions)
	mux.HandleFunc("GET /2015-03-31/functions/{name}", h.getFunction)
	mux.HandleFunc("GET /2015-03-31/functions/{name}/configuration", h.getConfiguration)
	mux.HandleFunc("DELETE /2015-03-31/functions/{name}", h.deleteFunction)
	mux.HandleFunc("PUT /2015-03-31/functions/{name}/code", h.updateCode)
	mux.HandleFunc("PUT /2015-03-31/functions/{name}/configuration", h.updateConfiguration)
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", h.invoke)
	mux.HandleFunc("GET /i/{inst}/2018-06-01/runtime/invocation/next", h.next)
	mux.HandleFunc("POST /i/{inst}/2018-06-01/runtime/invocation/{req}/response", h.respond)
	mux.HandleFunc("POST /i/{inst}/2018-06-01/runtime/invocation/{req}/error", h.respond)
	mux.HandleFunc("POST /i/{inst}/2018-06-01/runtime/init/error", h.initError)
	return mux
}

// awsError answers the way the Lambda API does, so the SDK raises the right typed error.
func awsError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("X-Amzn-ErrorType", typ)
	writeJSON(w, status, map[string]string{"Type": "User", "message": msg, "__type": typ})
}

func hostError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errNotFound):
		awsError(w, http.StatusNotFound, "ResourceNotFoundException", err.Error())
	case errors.Is(err, errConflict):
		awsError(w, http.StatusConflict, "ResourceConflictException", err.Error())
	case errors.Is(err, errThrottled):
		awsError(w, http.StatusTooManyRequests, "TooManyRequestsException", err.Error())
	default:
		awsError(w, http.StatusBadRequest, "InvalidParameterValueException", err.Error())
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// wire shapes of the Lambda API
type environment struct {
	Variables map[string]string `json:"Variables"`
}

type configurationJSON struct {
	FunctionName     string       `json:"FunctionName"`
	FunctionArn      string       `json:"FunctionArn"`
	Runtime          string       `json:"Runtime,omitempty"`
	Role             string       `json:"Role,omitempty"`
	Handler          string       `json:"Handler,omitempty"`
	Description      string       `json:"Description,omitempty"`
	Timeout          int32        `json:"Timeout"`
	MemorySize       int32        `json:"MemorySize"`
	CodeSha256       string       `json:"CodeSha256"`
	CodeSize         int64        `json:"CodeSize"`
	LastModified     string       `json:"LastModified"`
	Version          string       `json:"Version"`
	State            string       `json:"State"`
	LastUpdateStatus string       `json:"LastUpdateStatus"`
	PackageType      string       `json:"PackageType"`
	Architectures    []string     `json:"Architectures"`
	Environment      *environment `json:"Environment,omitempty"`
}

func (h *Host) toJSON(c FunctionConfig) configurationJSON {
	out := configurationJSON{
		FunctionName: c.FunctionName, FunctionArn: h.arn(c.FunctionName), Runtime: c.Runtime, Role: c.Role,
		Handler: c.Handler, Description: c.Description, Timeout: c.Timeout, MemorySize: c.MemorySize,
		CodeSha256: c.CodeSha256, CodeSize: c.CodeSize, LastModified: c.LastModified, Version: "$LATEST",
		State: "Active", LastUpdateStatus: "Successful", PackageType: "Zip", Architectures: []string{"x86_64"},
	}
	if len(c.Environment) > 0 {
		out.Environment = &environment{Variables: c.Environment}
	}
	return out
}

type createRequest struct {
	FunctionName string       `json:"FunctionName"`
	Runtime      string       `json:"Runtime"`
	Role         string       `json:"Role"`
	Handler      string       `json:"Handler"`
	Description  string       `json:"Description"`
	Timeout      *int32       `json:"Timeout"`
	MemorySize   *int32       `json:"MemorySize"`
	Environment  *environment `json:"Environment"`
	Code         struct {
		ZipFile []byte `json:"ZipFile"`
	} `json:"Code"`
}

func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit)).Decode(v); err != nil {
		awsError(w, http.StatusBadRequest, "InvalidParameterValueException", "request body: "+err.Error())
		return false
	}
	return true
}

func (h *Host) createFunction(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if !decode(w, r, maxZipUpload, &req) {
		return
	}
	if len(req.Code.ZipFile) == 0 {
		awsError(w, http.StatusBadRequest, "InvalidParameterValueException", "Code.ZipFile is required (the host runs zip packages only)")
		return
	}
	cfg := FunctionConfig{FunctionName: req.FunctionName, Runtime: req.Runtime, Role: req.Role, Handler: req.Handler, Description: req.Description}
	if req.Timeout != nil {
		cfg.Timeout = *req.Timeout
	}
	if req.MemorySize != nil {
		cfg.MemorySize = *req.MemorySize
	}
	if req.Environment != nil {
		cfg.Environment = req.Environment.Variables
	}
	out, err := h.Deploy(cfg, req.Code.ZipFile, true)
	if err != nil {
		hostError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, h.toJSON(out))
}

func (h *Host) updateCode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ZipFile []byte `json:"ZipFile"`
	}
	if !decode(w, r, maxZipUpload, &req) {
		return
	}
	out, err := h.Deploy(FunctionConfig{FunctionName: r.PathValue("name")}, req.ZipFile, false)
	if err != nil {
		hostError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h.toJSON(out))
}

func (h *Host) updateConfiguration(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if !decode(w, r, 1<<20, &req) {
		return
	}
	out, err := h.Configure(r.PathValue("name"), func(c *FunctionConfig) {
		if req.Runtime != "" {
			c.Runtime = req.Runtime
		}
		if req.Role != "" {
			c.Role = req.Role
		}
		if req.Handler != "" {
			c.Handler = req.Handler
		}
		if req.Description != "" {
			c.Description = req.Description
		}
		if req.Timeout != nil {
			c.Timeout = *req.Timeout
		}
		if req.MemorySize != nil {
			c.MemorySize = *req.MemorySize
		}
		if req.Environment != nil {
			c.Environment = req.Environment.Variables
		}
	})
	if err != nil {
		hostError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h.toJSON(out))
}

func (h *Host) getFunction(w http.ResponseWriter, r *http.Request) {
	c, err := h.Get(r.PathValue("name"))
	if err != nil {
		hostError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"Configuration": h.toJSON(c),
		"Code":          map[string]string{"RepositoryType": "S3", "Location": ""},
	})
}

func (h *Host) getConfiguration(w http.ResponseWriter, r *http.Request) {
	c, err := h.Get(r.PathValue("name"))
	if err != nil {
		hostError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h.toJSON(c))
}

func (h *Host) listFunctions(w http.ResponseWriter, _ *http.Request) {
	fns := h.List()
	out := make([]configurationJSON, 0, len(fns))
	for _, c := range fns {
		out = append(out, h.toJSON(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"Functions": out})
}

func (h *Host) deleteFunction(w http.ResponseWriter, r *http.Request) {
	if err := h.Delete(r.PathValue("name")); err != nil {
		hostError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Host) invoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	// A qualifier or an ARN may name the function; the host has $LATEST only.
	if i := strings.LastIndex(name, ":function:"); i >= 0 {
		name = name[i+len(":function:"):]
	}
	name, _, _ = strings.Cut(name, ":")
	payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSyncPayload))
	if err != nil {
		awsError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
		return
	}
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	switch r.Header.Get("X-Amz-Invocation-Type") {
	case "DryRun":
		if _, err := h.Get(name); err != nil {
			hostError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		if _, err := h.Get(name); err != nil {
			hostError(w, err)
			return
		}
		go func() {
			ctx, cancel := contextWithTimeout(15 * time.Minute)
			defer cancel()
			_, _, _ = h.Invoke(ctx, name, payload)
		}()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	ctx := r.Context()
	// The caller's ClientContext (base64 JSON, as the Invoke API takes it) reaches the
	// runtime decoded, as Lambda hands it over: the trace context travels in it.
	if cc, err := base64.StdEncoding.DecodeString(r.Header.Get("X-Amz-Client-Context")); err == nil && len(cc) > 0 {
		ctx = context.WithValue(ctx, clientContextKey{}, string(cc))
	}
	out, failed, err := h.Invoke(ctx, name, payload)
	if err != nil {
		hostError(w, err)
		return
	}
	if len(out) > maxSyncPayload {
		out = []byte(fmt.Sprintf(`{"errorType":"Function.ResponseSizeTooLarge","errorMessage":"Response payload size (%d bytes) exceeded maximum allowed payload size (6291556 bytes)."}`, len(out)))
		failed = true
	}
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	if failed {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func (h *Host) instance(r *http.Request) (*instance, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	inst, ok := h.instances[r.PathValue("inst")]
	return inst, ok
}

// next hands an instance its next invocation; it blocks until there is one.
func (h *Host) next(w http.ResponseWriter, r *http.Request) {
	inst, ok := h.instance(r)
	if !ok {
		http.Error(w, "unknown instance", http.StatusForbidden)
		return
	}
	select {
	case inv := <-inst.work:
		deadline := time.Now().Add(inv.timeout)
		hd := w.Header()
		hd.Set("Lambda-Runtime-Aws-Request-Id", inv.requestID)
		hd.Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(deadline.UnixMilli()))
		hd.Set("Lambda-Runtime-Invoked-Function-Arn", h.arn(inst.fn.cfg.FunctionName))
		hd.Set("Lambda-Runtime-Trace-Id", "Root=1-"+inv.requestID[:8]+"-"+strings.ReplaceAll(inv.requestID, "-", "")[:24])
		if inv.clientContext != "" {
			hd.Set("Lambda-Runtime-Client-Context", inv.clientContext)
		}
		hd.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(inv.payload)
		close(inv.picked)
	case <-inst.exited:
		http.Error(w, "instance stopped", http.StatusGone)
	case <-r.Context().Done():
	}
}

// respond takes a result (…/response) or a handler error (…/error) of the current invocation.
func (h *Host) respond(w http.ResponseWriter, r *http.Request) {
	inst, ok := h.instance(r)
	if !ok {
		http.Error(w, "unknown instance", http.StatusForbidden)
		return
	}
	inst.mu.Lock()
	inv := inst.current
	inst.mu.Unlock()
	if inv == nil || inv.requestID != r.PathValue("req") {
		http.Error(w, "no such invocation in progress", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSyncPayload+1024))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	res := result{payload: body, reuse: true}
	if strings.HasSuffix(r.URL.Path, "/error") {
		res.errorType = "Unhandled"
	} else if t := r.Trailer.Get("Lambda-Runtime-Function-Error-Type"); t != "" {
		// A streamed response that failed part-way reports its error in trailers.
		res.errorType = "Unhandled"
		if b, err := base64.StdEncoding.DecodeString(r.Trailer.Get("Lambda-Runtime-Function-Error-Body")); err == nil {
			res.payload = b
		}
	}
	inv.finish(res)
	w.WriteHeader(http.StatusAccepted)
}

func (h *Host) initError(w http.ResponseWriter, r *http.Request) {
	inst, ok := h.instance(r)
	if !ok {
		http.Error(w, "unknown instance", http.StatusForbidden)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	inst.mu.Lock()
	inv := inst.current
	inst.mu.Unlock()
	if inv != nil {
		inv.finish(result{payload: body, errorType: "Unhandled"})
	}
	w.WriteHeader(http.StatusAccepted)
	inst.kill()
}
