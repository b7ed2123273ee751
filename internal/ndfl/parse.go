package ndfl

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
)

// Parse reads a declaration in its format ("json" or "xml"). The declaration-check
// function, the API and the batch import all read declarations with it.
func Parse(b []byte, format string) (Declaration, error) {
	var d Declaration
	var err error
	switch format {
	case "json":
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		err = dec.Decode(&d)
	case "xml":
		err = xml.Unmarshal(b, &struct {
			XMLName xml.Name `xml:"declaration"`
			*Declaration
		}{Declaration: &d})
	default:
		return d, fmt.Errorf("format must be json or xml")
	}
	if err != nil {
		return d, fmt.Errorf("the declaration cannot be read as %s: %v", strings.ToUpper(format), err)
	}
	return d, nil
}
