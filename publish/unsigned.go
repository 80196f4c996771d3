package publish

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"

	cose "github.com/veraison/go-cose"

	"github.com/cocobuild/cocobuild/publish/sign"
)

// UnsignedCoRIM returns the unsigned CoRIM of a release's entries for one
// TEE: the payload (a tag-501 unsigned CoRIM holding the CoMIDs) that
// EncodeCoRIM signs, or nil when the release has no entry of that TEE. It
// needs no key: repro and verify-build compare it with the payload of a
// published CoRIM whose signature they verified.
//
// It is a thin wrapper of EncodeCoRIM, so that it follows whatever
// encoding EncodeCoRIM writes: the CoRIM is signed with a throwaway key
// made here and its signature dropped; the payload does not depend on the
// key.
func UnsignedCoRIM(r *Release, tee string) ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	s, err := sign.NewSigner(k)
	if err != nil {
		return nil, err
	}
	signed, err := EncodeCoRIM(r, tee, s)
	if err != nil || signed == nil {
		return nil, err
	}
	return CoRIMPayload(signed)
}

// CoRIMPayload returns the payload of a signed CoRIM (COSE_Sign1): its
// unsigned CoRIM. It does not check the signature; VerifyCoRIM does.
func CoRIMPayload(signed []byte) ([]byte, error) {
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(signed); err != nil {
		return nil, fmt.Errorf("signed CoRIM: %w", err)
	}
	if len(msg.Payload) == 0 {
		return nil, errors.New("signed CoRIM: no payload")
	}
	return msg.Payload, nil
}
