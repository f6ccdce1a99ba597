// Loaded before dynalite (node --require): dynalite throws on a request its client aborted
// (`req.on('error', throw)`), so one killed writer took the whole emulator down. DynamoDB serves
// on; so does dynalite with this: an aborted request is logged, anything else still crashes it.
process.on('uncaughtException', (err) => {
  if (err && err.code === 'ECONNRESET') {
    console.error(`dynalite: a client aborted its request (${err.message})`)
    return
  }
  throw err
})
