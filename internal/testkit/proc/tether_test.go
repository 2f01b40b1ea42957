package proc

import "testing"

func TestClientSecret(t *testing.T) {
	tests := []struct {
		name, out, want string
	}{
		{"client add", "created client billing\nclient_id=billing\nclient_secret=s3cret\n", "s3cret"},
		{"no final newline", "client_id=billing\nclient_secret=s3cret", "s3cret"},
		{"CRLF", "client_id=billing\r\nclient_secret=s3cret\r\n", "s3cret"},
		{"no secret", "created client billing\nclient_id=billing\n", ""},
		{"empty secret", "client_secret=\n", ""},
		{"not at the start of a line", "the client_secret=s3cret is shown once\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clientSecret(tt.out); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
