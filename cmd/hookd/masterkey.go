package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hookd/hookd/customheaders"
	"github.com/hookd/hookd/inbound"
	"github.com/hookd/hookd/secrets"
	"github.com/hookd/hookd/store"
)

// masterkey runs `hookd masterkey generate|rotate`.
func masterkey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	const synopsis = "hookd masterkey generate [--id ID] | hookd masterkey rotate --master-key NEW --master-keys-old OLD[,OLD2] [flags]"
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, synopsis)
	}
	if isHelp(args[0]) {
		groupHelp(stdout, "masterkey", "hookd masterkey generate [--id ID]",
			"hookd masterkey rotate --master-key NEW --master-keys-old OLD[,OLD2] [flags]")
		return nil
	}
	switch args[0] {
	case "generate":
		return masterkeyGenerate(args[1:], stdout, stderr)
	case "rotate":
		return masterkeyRotate(ctx, args[1:], getenv, stdout, stderr)
	}
	return fmt.Errorf("%w: %s", errUsage, synopsis)
}

func masterkeyGenerate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("masterkey generate", stderr)
	id := fs.String("id", "mk-"+time.Now().UTC().Format("20060102"), "the key's id (1-32 of A-Z a-z 0-9 _ . -), stored beside every secret it seals")
	env := envVars{None: []string{"id"}}
	fs.Usage = usage(fs, "hookd masterkey generate [--id ID]", env)
	if ok, err := commandFlags(fs, args, func(string) string { return "" }, stdout, env); !ok {
		return err
	}
	if err := secrets.ValidKeyID(*id); err != nil {
		return fmt.Errorf("%w: --id: %w", errUsage, err)
	}
	k := secrets.GenerateMasterKey(*id)
	fmt.Fprintln(stdout, k.String())
	return nil
}

// rotateBatch is how many signing keys one transaction of `masterkey
// rotate` re-seals by default.
const rotateBatch = 100

// masterkeyRotate re-seals every signing secret (and endpoint custom header
// map, sealing plain-text ones of earlier releases) not sealed by --master-key
// under it, while servers keep running (docs/operations.md (master keys and their rotation)). It
// succeeds only when, afterwards, no secret is sealed by another key, so
// "the old keys can be removed" is never said too early.
func masterkeyRotate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c Config
	batch := rotateBatch
	fs := newFlagSet("masterkey rotate", stderr)
	dbFlags(fs, &c)
	fs.StringVar(&c.MasterKey, "master-key", "", `the NEW master key, "ID:BASE64": every signing secret is re-sealed under it (required)`)
	fs.StringVar(&c.MasterKeysOld, "master-keys-old", "", "the retired master keys, comma-separated, that sealed the secrets to re-seal")
	fs.IntVar(&batch, "batch-size", rotateBatch, "signing secrets re-sealed per transaction (1-1000)")
	env := envVars{None: []string{"batch-size"}}
	fs.Usage = usage(fs, "hookd masterkey rotate --master-key NEW --master-keys-old OLD[,OLD2] [flags]", env)
	if ok, err := parse(fs, &c, args, getenv, stdout, false, env); !ok {
		return err
	}
	if batch < 1 || batch > 1000 {
		return fmt.Errorf("%w: --batch-size must be 1 to 1000, got %d", errUsage, batch)
	}
	if c.MasterKey == "" {
		return fmt.Errorf("%w: --master-key NEW (or HOOKD_MASTER_KEY) is required: the key every signing secret is re-sealed under", errUsage)
	}
	active, err := secrets.ParseMasterKey(c.MasterKey)
	if err != nil {
		return fmt.Errorf("%w: --master-key (HOOKD_MASTER_KEY): %w", errUsage, err)
	}
	old, err := parseOldMasterKeys(c.MasterKeysOld)
	if err != nil {
		return fmt.Errorf("%w: --master-keys-old (HOOKD_MASTER_KEYS_OLD): %w", errUsage, err)
	}
	kr, err := secrets.NewKeyring(active, old...)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}

	log := newLogger(&c, stderr)
	st, err := openStore(ctx, &c, log)
	if err != nil {
		return err
	}
	defer st.Close()
	inUse, err := st.MasterKeyIDsInUse(ctx)
	if err != nil {
		return err
	}
	if missing := missingMasterKeys(kr, inUse); len(missing) > 0 {
		return fmt.Errorf("signing secrets or endpoint headers in the database were sealed by master key %s, which was not given: add it to --master-keys-old; nothing was re-sealed", strings.Join(missing, ", "))
	}

	resealed, err := st.ResealSigningKeys(ctx, active.ID, batch, func(k store.SigningKey) (string, []byte, error) {
		aad := []byte(k.ID)
		pt, err := kr.Open(k.MasterKeyID, k.SecretSealed, aad)
		if err != nil {
			return "", nil, err
		}
		id, sealed := kr.Seal(pt, aad)
		clear(pt)
		return id, sealed, nil
	})
	reportResealed(stdout, resealed, active.ID)
	if err != nil {
		return fmt.Errorf("%w (the secrets re-sealed before this stay re-sealed; run the command again to continue)", err)
	}
	headers, err := st.ResealEndpointHeaders(ctx, active.ID, batch, func(e store.Endpoint) (store.SealedHeaders, error) {
		h := map[string]string(e.Headers)
		if e.HeadersSealed != nil {
			var err error
			if h, err = customheaders.Open(kr, e.ID, *e.HeadersKeyID, e.HeadersSealed); err != nil {
				return store.SealedHeaders{}, err
			}
		}
		keyID, sealed := customheaders.Seal(kr, e.ID, h)
		return store.SealedHeaders{KeyID: keyID, Sealed: sealed}, nil
	})
	reportSealedHeaders(stdout, headers, active.ID)
	if err != nil {
		return fmt.Errorf("%w (the headers sealed before this stay sealed; run the command again to continue)", err)
	}
	inboundSecrets, err := st.ResealInboundSecrets(ctx, active.ID, batch, func(ie store.InboundEndpoint) (string, []byte, error) {
		aad := inbound.SecretAAD(ie.ID)
		pt, err := kr.Open(*ie.HMACKeyID, ie.HMACSecretSealed, aad)
		if err != nil {
			return "", nil, err
		}
		id, sealed := kr.Seal(pt, aad)
		clear(pt)
		return id, sealed, nil
	})
	for _, id := range slices.Sorted(maps.Keys(inboundSecrets)) {
		fmt.Fprintf(stdout, "re-sealed %d inbound HMAC secrets from master key %s to %s\n", inboundSecrets[id], id, active.ID)
	}
	if err != nil {
		return fmt.Errorf("%w (the secrets re-sealed before this stay re-sealed; run the command again to continue)", err)
	}

	left, err := st.MasterKeyIDsInUse(ctx)
	if err != nil {
		return err
	}
	left = slices.DeleteFunc(left, func(id string) bool { return id == active.ID })
	if len(left) > 0 {
		return fmt.Errorf("signing secrets or endpoint headers sealed by master key %s were written while this ran: a process still seals with it; give every process --master-key %s and run this again", strings.Join(left, ", "), active.ID)
	}
	var retired []string
	for _, k := range old {
		retired = append(retired, k.ID)
	}
	if len(retired) > 0 {
		fmt.Fprintf(stdout, "every signing secret is sealed by master key %s; master key %s can now be removed from --master-keys-old (HOOKD_MASTER_KEYS_OLD) of every process\n",
			active.ID, strings.Join(retired, ", "))
	} else {
		fmt.Fprintf(stdout, "every signing secret is sealed by master key %s\n", active.ID)
	}
	return nil
}

// reportSealedHeaders prints how many endpoints' custom headers were
// sealed, per master key they were sealed by before ("" for plain text).
func reportSealedHeaders(w io.Writer, sealed map[string]int, activeID string) {
	ids := make([]string, 0, len(sealed))
	for id := range sealed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if id == "" {
			fmt.Fprintf(w, "sealed the custom headers of %d endpoints, stored in plain text by an earlier release, with master key %s\n", sealed[id], activeID)
		} else {
			fmt.Fprintf(w, "re-sealed the custom headers of %d endpoints from master key %s to %s\n", sealed[id], id, activeID)
		}
	}
}

// reportResealed prints one line per old master key, in id order.
func reportResealed(w io.Writer, resealed map[string]int, activeID string) {
	if len(resealed) == 0 {
		fmt.Fprintf(w, "re-sealed 0 signing secrets: none was sealed by a key other than %s\n", activeID)
		return
	}
	ids := make([]string, 0, len(resealed))
	for id := range resealed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		fmt.Fprintf(w, "re-sealed %d signing secrets from master key %s to %s\n", resealed[id], id, activeID)
	}
}
