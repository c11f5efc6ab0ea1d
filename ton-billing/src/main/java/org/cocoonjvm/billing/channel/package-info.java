/**
 * Off-chain states of the official TON payment channel, one channel per (gateway, worker) with the
 * gateway paying: {@link org.cocoonjvm.billing.channel.SemiChannelState} is the contract's
 * {@code SemiChannel}, {@link org.cocoonjvm.billing.channel.SignedSemiChannel} its signed form as a
 * BOC, {@link org.cocoonjvm.billing.channel.ChannelPayer} signs the next state and
 * {@link org.cocoonjvm.billing.channel.VoucherVerifier} checks one. Cells come from ton4j; signing
 * is BouncyCastle's Ed25519, verification {@link org.cocoonjvm.billing.ed25519.FixedKeyEd25519}. The contract's layouts and rules: {@code shared/docs/reference/ton-payments.md}.
 */
package org.cocoonjvm.billing.channel;
