import { randomToken } from "../trust/random-tokens.ts";
import type { Config } from "../config/load.ts";
import { ErrorCode, ProtocolError, badRequest } from "../protocol/errors.ts";
import type { RegisterRequest } from "../protocol/requests.ts";
import type { ServerMessage } from "../protocol/server-messages.ts";
import { parsePublicKey, verifyRegisterProof } from "../trust/key-proof.ts";
import type { Clock } from "./context.ts";
import type { Session } from "./session.ts";

/** How long an issued nonce may be signed for a register, in ms. */
export const CHALLENGE_TTL_MS = 60_000;
/** Random bytes per nonce: enough that no two connections are ever given the same one. */
const NONCE_BYTES = 32;

const unauthorized = (message: string): ProtocolError => new ProtocolError(ErrorCode.Unauthorized, message);

/**
 * Proof of key possession for each connection (`key_proof`): `challenge` gives the connection a
 * nonce, and its next signed `register` must carry the signature of that nonce by the key it
 * registers (trust/key-proof.ts checks it). A connection holds one nonce at a time (asking again
 * replaces it), for CHALLENGE_TTL_MS and one signed register, verified or not, so a nonce can
 * never be replayed, on this connection or any other.
 */
export class Challenges {
  constructor(
    private readonly mode: Config["keyProof"],
    private readonly clock: Pick<Clock, "now">,
  ) {}

  /** `challenge`: a fresh nonce for this connection; 400 when `key_proof` is off. */
  issue(session: Session): ServerMessage<"challenge"> {
    if (this.mode === "off") throw badRequest("key_proof is off");
    const nonce = randomToken(NONCE_BYTES);
    session.challenge = { nonce, expiresAt: this.clock.now() + CHALLENGE_TTL_MS };
    return { type: "challenge", body: { payload: { nonce } } };
  }

  /**
   * Whether a register is proven: true when it is signed over this connection's nonce, false
   * when it is unsigned and `key_proof` lets it register so (`off`, `optional`; dialect
   * identities, which never sign, always). Throws 401 for a signature without a valid nonce
   * (none issued, already used, expired), a public_key that is no accepted key, a signature
   * that does not verify, and an unsigned register under `required`. A signed register takes
   * the nonce whatever the outcome.
   */
  prove(session: Session, request: RegisterRequest): boolean {
    if (request.identity !== undefined) return false;
    const { signature } = request;
    if (signature === undefined) {
      if (this.mode === "required") throw unauthorized("key_proof is required: sign a challenge");
      return false;
    }
    const challenge = session.challenge;
    session.challenge = undefined;
    if (challenge === undefined || this.clock.now() >= challenge.expiresAt) {
      throw unauthorized("no challenge to answer: ask for one with challenge, then register within 60 s");
    }
    const key = parsePublicKey(request.publicKey);
    if (key === undefined) throw unauthorized("public_key is not a P-256 or Ed25519 public key in base64");
    if (!verifyRegisterProof(key, challenge.nonce, signature)) throw unauthorized("signature does not verify");
    return true;
  }
}
