/**
 * Everything that touches the TON chain: payment channels between a gateway (A, payer) and a
 * worker (B, payee) on the official contract, client deposits, and fees.
 *
 * <ul>
 *   <li>{@link org.cocoonjvm.billing.chain.OnChainChannel} – one party's handle on one channel:
 *       every on-chain step of its life, built with ton4j and sent through toncenter.
 *   <li>{@link org.cocoonjvm.billing.chain.ChannelSettlement} – when money should move on chain;
 *       {@link org.cocoonjvm.billing.chain.ChannelCosts} and {@link
 *       org.cocoonjvm.billing.chain.FeeSchedule} – what it costs, from the chain's config.
 *   <li>{@link org.cocoonjvm.billing.chain.DepositWatcher} – commented transfers into the gateway
 *       wallet, credited through a {@link org.cocoonjvm.billing.chain.DepositSink}.
 *   <li>{@link org.cocoonjvm.billing.chain.ChainClient} and {@link
 *       org.cocoonjvm.billing.chain.ChainWallet} – toncenter v2 and a party's wallet; {@link
 *       org.cocoonjvm.billing.chain.LocalChain} – the emulated chain for tests.
 *   <li>Failures: {@link org.cocoonjvm.billing.chain.ChainException} with a stable {@code code()};
 *       {@link org.cocoonjvm.billing.chain.ChainException.Rejected} carries the contract's exit
 *       code.
 * </ul>
 */
package org.cocoonjvm.billing.chain;
