package publish

import (
	"errors"
	"fmt"

	cose "github.com/veraison/go-cose"
)

// CoRIMPayload returns the payload of a signed CoRIM (COSE_Sign1): its
// unsigned CoRIM, which verify-build compares with UnsignedCoRIM of the
// rebuilt release. It does not check the signature; VerifyCoRIM does.
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
