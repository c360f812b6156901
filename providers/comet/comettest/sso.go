package comettest

import (
	"crypto/rand"
	"encoding/hex"
)

// sessionStartAsUserLocked answers account/session-start-as-user as the
// Comet Server does (comet-go-sdk v25.9.6 AdminAccountSessionStartAsUser:
// form field TargetUser; reply SessionKeyRegeneratedResponse
// {Status, Message, SessionKey, SessionType}). An unknown user gets the
// fake's usual "User not found" body error.
func (s *Server) sessionStartAsUserLocked(user string) reply {
	if s.users[user] == nil {
		return userNotFound()
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	key := "sess-" + hex.EncodeToString(b)
	if s.sessions == nil {
		s.sessions = map[string]string{}
	}
	s.sessions[key] = user
	return reply{status: 200, body: map[string]any{"Status": 200, "Message": "OK", "SessionKey": key, "SessionType": "user"}}
}

// SessionUser returns the user a session key started by
// account/session-start-as-user logs in as.
func (s *Server) SessionUser(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.sessions[key]
	return u, ok
}
