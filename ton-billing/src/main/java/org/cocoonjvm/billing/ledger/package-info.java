/**
 * The durable ledger: {@link org.cocoonjvm.billing.ledger.JdbcAccountBook}, an
 * {@link org.cocoonjvm.billing.accounts.AccountBook} on H2 (embedded file) or PostgreSQL with one
 * schema, brought up to date by {@link org.cocoonjvm.billing.ledger.Migrations}. The schema, the
 * invariants and the crash-safety argument are in ton-billing's README.
 */
package org.cocoonjvm.billing.ledger;
