// A local TON chain for ton-billing tests: @ton/sandbox (the real emulator, compiled to WASM)
// behind the subset of the toncenter v2 HTTP API that ton4j's TonCenter client and the billing
// code call. Loopback only. Prints one ready line, {"port":N}, then serves until stdin closes
// (so it dies with the JVM that started it) or SIGTERM.
//
// Test-only endpoints, absent from toncenter: POST /faucet gives an address coins from a
// treasury; POST /advanceTime moves chain time forward (quarantine tests).
'use strict';

const http = require('node:http');
const { Blockchain } = require('@ton/sandbox');
const { Address, Cell, Dictionary, toNano, beginCell } = require('@ton/core');

class BadRequest extends Error {}

// Chain time follows the wall clock plus whatever /advanceTime added; it is set before every
// operation so that wallet valid_until checks and the channel's quarantine see one clock.
let timeOffset = 0;
let block = 0;
const chainNow = () => Math.floor(Date.now() / 1000) + timeOffset;

const hex = (n) => (n < 0n ? '-0x' + (-n).toString(16) : '0x' + n.toString(16));
const cellEntry = (cell) => ({ '@type': 'tvm.cell', bytes: cell.toBoc().toString('base64') });

// toncenter v2 puts top-level stack items as [type, value] pairs and nested tuple elements as
// tvm.stackEntry* objects; keep both shapes so unmodified clients parse them.
function topItem(item) {
  switch (item.type) {
    case 'int': return ['num', hex(item.value)];
    case 'cell': case 'slice': case 'builder': return ['cell', cellEntry(item.cell)];
    case 'tuple': return ['tuple', { '@type': 'tvm.tuple', elements: item.items.map(nestedItem) }];
    case 'null': return ['null', null];
    default: throw new Error('unsupported stack item ' + item.type);
  }
}
function nestedItem(item) {
  switch (item.type) {
    case 'int': return { '@type': 'tvm.stackEntryNumber', number: { '@type': 'tvm.numberDecimal', number: item.value.toString() } };
    case 'cell': case 'slice': case 'builder': return { '@type': 'tvm.stackEntryCell', cell: cellEntry(item.cell) };
    case 'tuple': return { '@type': 'tvm.stackEntryTuple', tuple: { '@type': 'tvm.tuple', elements: item.items.map(nestedItem) } };
    case 'null': return { '@type': 'tvm.stackEntryNull' };
    default: throw new Error('unsupported stack item ' + item.type);
  }
}
function inputItem([type, value]) {
  if (type !== 'num') throw new BadRequest('only num stack arguments are supported, got ' + type);
  return { type: 'int', value: BigInt(value) };
}

function comment(body) {
  if (!body) return null;
  const s = body.beginParse();
  if (s.remainingBits < 32 || s.loadUint(32) !== 0) return null;
  try { return s.loadStringTail(); } catch { return null; }
}

function message(msg) {
  if (!msg) return null;
  const info = msg.info;
  const text = comment(msg.body);
  return {
    '@type': 'raw.message',
    source: info.src && info.type !== 'external-in' ? info.src.toString() : '',
    destination: info.dest && info.type !== 'external-out' ? info.dest.toString() : '',
    value: info.type === 'internal' ? info.value.coins.toString() : '0',
    fwd_fee: info.type === 'internal' ? info.forwardFee.toString() : '0',
    created_lt: info.type === 'external-in' ? '0' : info.createdLt.toString(),
    body_hash: msg.body.hash().toString('base64'),
    msg_data: text === null
      ? { '@type': 'msg.dataRaw', body: msg.body.toBoc().toString('base64') }
      : { '@type': 'msg.dataText', text: Buffer.from(text, 'utf8').toString('base64') },
    message: text ?? '',
  };
}

function transaction(tx) {
  const d = tx.description;
  const compute = d.computePhase;
  return {
    '@type': 'raw.transaction',
    utime: tx.now,
    transaction_id: { '@type': 'internal.transactionId', lt: tx.lt.toString(), hash: tx.hash().toString('base64') },
    fee: tx.totalFees.coins.toString(),
    storage_fee: (d.storagePhase?.storageFeesCollected ?? 0n).toString(),
    other_fee: '0',
    in_msg: message(tx.inMessage),
    out_msgs: tx.outMessages.values().map(message),
    // Not in toncenter v2 (it sends the raw BOC instead): the phase results tests assert on.
    description: {
      aborted: d.aborted ?? false,
      compute_skipped: compute?.type !== 'vm',
      compute_exit_code: compute?.type === 'vm' ? compute.exitCode : null,
      gas_used: compute?.type === 'vm' ? compute.gasUsed.toString() : '0',
      gas_fees: compute?.type === 'vm' ? compute.gasFees.toString() : '0',
      action_result_code: d.actionPhase ? d.actionPhase.resultCode : null,
      fwd_fees: d.actionPhase?.totalFwdFees?.toString() ?? '0',
    },
  };
}

function addressParam(query) {
  const raw = query.get('address');
  if (!raw) throw new BadRequest('address is required');
  try { return Address.parse(raw); } catch { throw new BadRequest('not a TON address: ' + raw); }
}

async function main() {
  const chain = await Blockchain.create();
  const treasury = await chain.treasury('faucet', { balance: toNano('1000000000') });
  const tick = () => { chain.now = chainNow(); block += 1; };
  // Every transaction, oldest first. Kept here rather than read from Blockchain.getTransactions,
  // which in 0.41.0 reverses its own list in place on every call and cannot page by hash.
  const history = [];

  const routes = {
    'POST /sendBoc': async (body) => { await send(body); return { '@type': 'ok' }; },
    'POST /sendBocReturnHash': async (body) => ({ '@type': 'raw.extMessageInfo', hash: (await send(body)).toString('base64') }),
    'POST /runGetMethod': async (body) => {
      chain.now = chainNow();
      const stack = (body.stack ?? []).map(inputItem);
      try {
        const r = await chain.runGetMethod(Address.parse(body.address), body.method, stack);
        return { '@type': 'smc.runResult', gas_used: Number(r.gasUsed), exit_code: r.exitCode, stack: r.stack.map(topItem) };
      } catch (e) {
        if (e.exitCode === undefined) throw e;
        return { '@type': 'smc.runResult', gas_used: Number(e.gasUsed ?? 0n), exit_code: e.exitCode, stack: [] };
      }
    },
    'GET /getAddressState': async (_, q) => {
      const state = (await chain.getContract(addressParam(q))).accountState;
      return !state ? 'uninitialized' : state.type === 'uninit' ? 'uninitialized' : state.type;
    },
    'GET /getAddressBalance': async (_, q) => (await chain.getContract(addressParam(q))).balance.toString(),
    'GET /getTransactions': async (_, q) => {
      const address = addressParam(q);
      const limit = Number(q.get('limit') ?? 10);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new BadRequest('limit must be 1..1000');
      let mine = history.filter((tx) => tx.inMessage?.info.dest?.equals?.(address)).reverse();
      if (q.get('lt') && q.get('hash')) {
        const from = mine.findIndex((tx) => tx.lt === BigInt(q.get('lt')) && tx.hash().toString('base64') === q.get('hash'));
        if (from < 0) throw new BadRequest('no transaction ' + q.get('lt') + ':' + q.get('hash') + ' on ' + q.get('address'));
        mine = mine.slice(from);
      }
      return mine.slice(0, limit).map(transaction);
    },
    'GET /getConfigParam': async (_, q) => {
      const id = Number(q.get('config_id'));
      const dict = Dictionary.loadDirect(Dictionary.Keys.Int(32), Dictionary.Values.Cell(), chain.config);
      const param = dict.get(id);
      if (!Number.isInteger(id) || !param) throw new BadRequest('no config param ' + q.get('config_id'));
      return { '@type': 'configInfo', config: cellEntry(param) };
    },
    'GET /getMasterchainInfo': async () => ({
      '@type': 'blocks.masterchainInfo',
      last: { '@type': 'ton.blockIdExt', workchain: -1, shard: '-9223372036854775808', seqno: block, root_hash: '', file_hash: '' },
      // Not in toncenter v2: the emulated chain's clock, which /advanceTime moves.
      utime: chainNow(),
    }),
    'POST /faucet': async (body) => {
      if (!body.address || !body.amount) throw new BadRequest('address and amount are required');
      tick();
      const to = Address.parse(body.address);
      const r = await treasury.send({ to, value: BigInt(body.amount), bounce: false, body: beginCell().endCell() });
      history.push(...r.transactions);
      const credited = r.transactions.find((t) => t.inMessage?.info.dest?.equals?.(to));
      return { hash: credited ? credited.hash().toString('base64') : '' };
    },
    'POST /advanceTime': async (body) => {
      const seconds = Number(body.seconds);
      if (!Number.isInteger(seconds) || seconds < 0) throw new BadRequest('seconds must be a non-negative integer');
      timeOffset += seconds;
      return { now: chainNow() };
    },
  };

  // The external message's hash, as toncenter returns it; the emulator processes the message and
  // everything it causes before answering, so a reply means "final" on this chain.
  async function send(body) {
    if (!body.boc) throw new BadRequest('boc is required');
    let cell;
    try { cell = Cell.fromBase64(body.boc); } catch { throw new BadRequest('boc is not a valid base64 BOC'); }
    tick();
    try {
      history.push(...(await chain.sendMessage(cell)).transactions);
    } catch (e) {
      if (e.exitCode === undefined && !/not accepted/i.test(e.message)) throw e;
      throw new BadRequest('external message not accepted' + (e.exitCode === undefined ? '' : ': exit code ' + e.exitCode));
    }
    return cell.hash();
  }

  // One operation at a time: the emulator's state is one mutable object.
  let queue = Promise.resolve();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      queue = queue.then(async () => {
        const route = routes[req.method + ' ' + url.pathname];
        let status = 200;
        let payload;
        try {
          if (!route) { status = 404; throw new BadRequest('no such method ' + req.method + ' ' + url.pathname); }
          const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
          payload = { ok: true, result: await route(body, url.searchParams) };
        } catch (e) {
          if (status === 200) status = e instanceof BadRequest || e instanceof SyntaxError ? 400 : 500;
          payload = { ok: false, error: e.message, code: status };
        }
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(payload));
      });
    });
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
  process.on('SIGTERM', () => process.exit(0));
}

main().catch((e) => { console.error(e); process.exit(1); });
