/**
 * Ed25519 verification under a fixed public key, as the payee of a payment channel runs it for
 * every state: {@link org.cocoonjvm.billing.ed25519.FixedKeyEd25519}. Precomputed multiples of the
 * base point (shared) and of the key (built on the key's second verification) turn the two scalar
 * multiplications into 64 mixed additions with no doublings, on BouncyCastle's field
 * arithmetic ({@code X25519Field}); the point arithmetic, the tables and the scalar recoding are
 * here. The acceptance rule is the TON contract's (OpenSSL's): S below L and encode([S]B − [k]A)
 * equal to R byte for byte, which BouncyCastle's own cofactored verify is not. Signing stays
 * with BouncyCastle.
 */
package org.cocoonjvm.billing.ed25519;
