package unblock

import (
	"context"
	"testing"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

func TestCheck(t *testing.T) {
	db := storetest.New(map[string]storetest.Key{"tp": {PK: "inn"}})
	if _, err := store.PutNew(context.Background(), db, "tp", "inn", contract.Taxpayer{INN: "500100732259", Surname: "Салтыков-Щедрин",
		FirstName: "Михаил", Patronymic: "Евграфович", Passport: &contract.PassportRecord{Series: "4509", Number: "1"}}); err != nil {
		t.Fatal(err)
	}
	h := Handler{DB: db, Taxpayers: "tp"}
	for _, c := range []struct {
		name, series string
		want, err    bool
	}{
		{"салтыков - щедрин  михаил евграфович", "45 09", true, false},
		{"Салтыков-Щедрин Михаил", "4509", false, false},
		{"Салтыков-Щедрин Михаил Евграфович", "4510", false, false},
		{"Салтыков-Щедрин Михаил Евграфович", "45x9", false, true},
	} {
		res, err := h.Check(context.Background(), contract.UnblockCheckInput{INN: "500100732259", FullName: c.name, PassportSeries: c.series})
		if (err != nil) != c.err || res.Match != c.want {
			t.Errorf("%q %q: %+v %v", c.name, c.series, res, err)
		}
	}
	if res, err := h.Check(context.Background(), contract.UnblockCheckInput{INN: "7707083893", FullName: "X", PassportSeries: "4509"}); err == nil || res.Match {
		t.Error("an organisation's INN accepted")
	}
}
