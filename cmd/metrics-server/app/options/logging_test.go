package options

import (
	"strings"
	"testing"
)

func TestRedactingWriterMasksTokens(t *testing.T) {
	const token = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl"
	cases := []struct {
		name   string
		writes []string
		want   string
	}{
		{
			name: "text format, client-go request body",
			writes: []string{"I1130 03:06:22.862759    3764 webhook.go:252] \"Request Body\" body=<\n" +
				"\t{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{},\"spec\":{\"token\":\"" + token + "\"},\"status\":{\"user\":{}}}\n >\n"},
			want: "I1130 03:06:22.862759    3764 webhook.go:252] \"Request Body\" body=<\n" +
				"\t{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{},\"spec\":{\"token\":\"<masked>\"},\"status\":{\"user\":{}}}\n >\n",
		},
		{
			name:   "JSON format, escaped body",
			writes: []string{`{"ts":1.7e9,"caller":"webhook.go:252","msg":"Request Body","v":8,"body":"{\"kind\":\"TokenReview\",\"spec\":{\"token\":\"` + token + `\"}}"}` + "\n"},
			want:   `{"ts":1.7e9,"caller":"webhook.go:252","msg":"Request Body","v":8,"body":"{\"kind\":\"TokenReview\",\"spec\":{\"token\":\"<masked>\"}}"}` + "\n",
		},
		{
			name:   "pretty-printed, two tokens on two lines",
			writes: []string{"{\"spec\": {\"token\" : \"a-" + token + "\"},\n \"status\": {\"token\": \"b-" + token + "\"}}\n"},
			want:   "{\"spec\": {\"token\" : \"<masked>\"},\n \"status\": {\"token\": \"<masked>\"}}\n",
		},
		{
			name:   "one entry split across writes in the middle of the token",
			writes: []string{"body={\"spec\":{\"token\":\"" + token[:20], token[20:] + "\"}}\n"},
			want:   "body={\"spec\":{\"token\":\"<masked>\"}}\n",
		},
		{
			name:   "several entries in one write",
			writes: []string{"a \"token\":\"" + token + "\"\nb plain\nc \"token\":\"x\"\n"},
			want:   "a \"token\":\"<masked>\"\nb plain\nc \"token\":\"<masked>\"\n",
		},
		{
			name:   "other fields and the word token left alone",
			writes: []string{"\"Unable to authenticate the request\" err=\"[invalid bearer token, token not known]\" tokenFile=\"/var/run/token\"\n"},
			want:   "\"Unable to authenticate the request\" err=\"[invalid bearer token, token not known]\" tokenFile=\"/var/run/token\"\n",
		},
		{
			name:   "an unfinished line is held back",
			writes: []string{"done\n", "half a line"},
			want:   "done\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			w := newRedactingWriter(&out)
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(s))
				}
			}
			if out.String() != tc.want {
				t.Errorf("wrote\n%q\nwant\n%q", out.String(), tc.want)
			}
			if strings.Contains(out.String(), token[:20]) {
				t.Errorf("the token got through:\n%s", out.String())
			}
		})
	}
}
