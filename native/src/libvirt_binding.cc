// clonebox's libvirt binding: just what the health checker needs, nothing more.
//
// Every libvirt call that can block (open, list, addresses, agent, close) runs in a
// Napi::AsyncWorker's Execute(), on libuv's thread pool, and answers with a Promise; the event
// loop only copies finished C++ results into JS values. The one libvirt call made on the event
// loop is virConnectRef() when a call starts: an atomic reference count, no I/O, and it is what
// lets close() run while calls are still in flight (each worker owns a reference until it ends).
//
// JS surface (typed in src/inventory/native.ts):
//   open(uri: string | null, readOnly: boolean)                 -> Promise<Connection>
//   listDomains(conn)                                           -> Promise<DomainRow[]>
//   interfaceAddresses(conn, names: string[] | null, source, concurrency?) -> Promise<DomainAddresses[]>
//   agentCommand(conn, domain, json, timeoutSeconds)            -> Promise<string>
//   Connection#close() -> Promise<void>, #uri, #readOnly, #closed
//   libvirtVersion: string  (the libvirt.so actually loaded, e.g. "9.0.0")
// Rejections are Error objects carrying libvirt's message, `code` (virErrorNumber, -1 when
// libvirt gave none) and `domain` (virErrorDomain).

#include <napi.h>

#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

// ---------------------------------------------------------------- errors

struct Failure {
  std::string message;
  int code = -1;    // virErrorNumber
  int domain = -1;  // virErrorDomain
};

// libvirt keeps the last error per thread: read it on the thread that made the failing call.
Failure TakeLastError(const std::string& fallback) {
  Failure f;
  virErrorPtr err = virGetLastError();
  if (err != nullptr && err->code != VIR_ERR_OK) {
    f.message = err->message != nullptr ? err->message : fallback;
    f.code = err->code;
    f.domain = err->domain;
  } else {
    f.message = fallback;
  }
  virResetLastError();
  return f;
}

Failure ClosedConnection() {
  return Failure{"the libvirt connection is closed", VIR_ERR_INVALID_CONN, VIR_FROM_NONE};
}

Napi::Error FailureError(Napi::Env env, const Failure& f) {
  Napi::Error error = Napi::Error::New(env, f.message);
  error.Set("code", Napi::Number::New(env, f.code));
  error.Set("domain", Napi::Number::New(env, f.domain));
  return error;
}

Napi::Object FailureObject(Napi::Env env, const Failure& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("message", f.message);
  o.Set("code", Napi::Number::New(env, f.code));
  o.Set("domain", Napi::Number::New(env, f.domain));
  return o;
}

Napi::Promise RejectedPromise(Napi::Env env, const Failure& f) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(FailureError(env, f).Value());
  return deferred.Promise();
}

// ---------------------------------------------------------------- per-environment state

// Set when Node tears the environment down (process exit, worker thread end): connections still
// open then are left to the OS instead of being closed from finalizers.
struct EnvState {
  std::atomic<bool> tearingDown{false};
};

struct AddonData {
  Napi::FunctionReference connectionConstructor;
  std::shared_ptr<EnvState> state;
};

AddonData* DataOf(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

// ---------------------------------------------------------------- workers

// An AsyncWorker whose outcome settles a Promise. Subclasses do libvirt work in Execute() and
// report failure with Fail(); Result() turns their C++ result into a JS value on the event loop.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  Napi::Promise Start() {
    Napi::Promise promise = deferred_.Promise();
    Queue();  // the worker deletes itself after OnOK/OnError
    return promise;
  }

 protected:
  explicit PromiseWorker(Napi::Env env)
      : Napi::AsyncWorker(env, "clonebox.libvirt"), deferred_(Napi::Promise::Deferred::New(env)) {}

  void Fail(Failure f) {
    failure_ = std::move(f);
    SetError(failure_.message);
  }

  virtual Napi::Value Result(Napi::Env env) = 0;

 private:
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(Result(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

  void OnError(const Napi::Error&) override { deferred_.Reject(FailureError(Env(), failure_).Value()); }

  Napi::Promise::Deferred deferred_;
  Failure failure_;
};

// A worker that owns one libvirt reference to a connection for its whole life.
class ConnectionWorker : public PromiseWorker {
 protected:
  ConnectionWorker(Napi::Env env, virConnectPtr conn) : PromiseWorker(env), conn_(conn) {}

  ~ConnectionWorker() override {
    // Only when Execute() never ran (environment teardown): drop the reference anyway.
    if (conn_ != nullptr) virConnectClose(conn_);
  }

  virtual void Run() = 0;

  virConnectPtr conn_;

 private:
  void Execute() final {
    Run();
    virConnectClose(conn_);  // our reference; the connection lives on while others hold one
    conn_ = nullptr;
  }
};

// ---------------------------------------------------------------- Connection

class CloseWorker : public PromiseWorker {
 public:
  CloseWorker(Napi::Env env, virConnectPtr conn) : PromiseWorker(env), conn_(conn) {}

 private:
  void Execute() override {
    // < 0 means error; >= 0 is the number of references still held by in-flight calls.
    if (virConnectClose(conn_) < 0) Fail(TakeLastError("could not close the libvirt connection"));
  }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

  virConnectPtr conn_;
};

class Connection : public Napi::ObjectWrap<Connection> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Connection",
                       {
                           InstanceMethod<&Connection::Close>("close"),
                           InstanceAccessor<&Connection::Uri>("uri"),
                           InstanceAccessor<&Connection::ReadOnly>("readOnly"),
                           InstanceAccessor<&Connection::Closed>("closed"),
                       });
  }

  // new Connection(External<virConnect>, uri, readOnly): only open() can make one, as JS code
  // cannot create an External. The object takes over the reference open() got.
  explicit Connection(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Connection>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsExternal() || !info[1].IsString() || !info[2].IsBoolean()) {
      throw Napi::TypeError::New(env, "Connection objects are made by open(uri, readOnly)");
    }
    uri_ = info[1].As<Napi::String>().Utf8Value();
    readOnly_ = info[2].As<Napi::Boolean>().Value();
    state_ = DataOf(env)->state;
    conn_ = info[0].As<Napi::External<virConnect>>().Data();
  }

  // The finalizer: a handle garbage-collected while open is closed off the event loop.
  ~Connection() override {
    if (conn_ == nullptr) return;
    if (state_ && state_->tearingDown.load()) return;  // process/worker exit: the OS cleans up
    virConnectPtr conn = conn_;
    conn_ = nullptr;
    try {
      std::thread([conn] { virConnectClose(conn); }).detach();
    } catch (const std::system_error&) {
      // No thread to spare: leaking one connection beats blocking the event loop.
    }
  }

  // A new libvirt reference for a worker (it releases it with virConnectClose), or nullptr if
  // the handle is closed.
  virConnectPtr Acquire() {
    if (conn_ == nullptr) return nullptr;
    if (virConnectRef(conn_) < 0) return nullptr;
    return conn_;
  }

 private:
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (conn_ == nullptr) {  // idempotent
      auto deferred = Napi::Promise::Deferred::New(env);
      deferred.Resolve(env.Undefined());
      return deferred.Promise();
    }
    virConnectPtr conn = conn_;
    conn_ = nullptr;  // later calls fail at once with "the libvirt connection is closed"
    return (new CloseWorker(env, conn))->Start();
  }

  Napi::Value Uri(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), uri_); }
  Napi::Value ReadOnly(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), readOnly_); }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), conn_ == nullptr); }

  virConnectPtr conn_ = nullptr;
  std::string uri_;
  bool readOnly_ = false;
  std::shared_ptr<EnvState> state_;
};

// Unwraps a Connection argument: TypeError (thrown) when it is not one; nullptr when closed.
virConnectPtr AcquireArgument(const Napi::CallbackInfo& info, size_t index) {
  Napi::Env env = info.Env();
  Napi::Value v = index < info.Length() ? info[index] : env.Undefined();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(DataOf(env)->connectionConstructor.Value())) {
    throw Napi::TypeError::New(env, "expected a Connection from open()");
  }
  return Connection::Unwrap(v.As<Napi::Object>())->Acquire();
}

// ---------------------------------------------------------------- open

class OpenWorker : public PromiseWorker {
 public:
  OpenWorker(Napi::Env env, std::optional<std::string> uri, bool readOnly)
      : PromiseWorker(env), uri_(std::move(uri)), readOnly_(readOnly) {}

  ~OpenWorker() override {
    if (conn_ != nullptr) virConnectClose(conn_);  // opened but never handed to JS
  }

 private:
  void Execute() override {
    const char* uri = uri_ ? uri_->c_str() : nullptr;
    // No auth callbacks: a health check must never sit waiting on an interactive prompt. Access
    // comes from socket permissions / polkit / keys, and a refusal is reported as an error.
    conn_ = readOnly_ ? virConnectOpenReadOnly(uri) : virConnectOpenAuth(uri, nullptr, 0);
    if (conn_ == nullptr) {
      Fail(TakeLastError("could not connect to libvirt"));
      return;
    }
    char* canonical = virConnectGetURI(conn_);
    if (canonical != nullptr) {
      resolvedUri_ = canonical;
      free(canonical);
    } else {
      virResetLastError();
      resolvedUri_ = uri_.value_or("");
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object handle = DataOf(env)->connectionConstructor.New({
        Napi::External<virConnect>::New(env, conn_),
        Napi::String::New(env, resolvedUri_),
        Napi::Boolean::New(env, readOnly_),
    });
    conn_ = nullptr;  // the handle owns it now
    return handle;
  }

  std::optional<std::string> uri_;
  bool readOnly_;
  virConnectPtr conn_ = nullptr;
  std::string resolvedUri_;
};

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::optional<std::string> uri;
  if (info.Length() > 0 && info[0].IsString()) {
    uri = info[0].As<Napi::String>().Utf8Value();
  } else if (info.Length() > 0 && !info[0].IsNull() && !info[0].IsUndefined()) {
    throw Napi::TypeError::New(env, "open(uri, readOnly): uri must be a string, or null for libvirt's default");
  }
  bool readOnly = info.Length() > 1 && info[1].ToBoolean().Value();
  return (new OpenWorker(env, std::move(uri), readOnly))->Start();
}

// ---------------------------------------------------------------- listDomains

struct DomainRow {
  std::string name;
  std::string uuid;
  int id = -1;
  int state = 0;
  int reason = 0;
};

class ListDomainsWorker : public ConnectionWorker {
 public:
  ListDomainsWorker(Napi::Env env, virConnectPtr conn) : ConnectionWorker(env, conn) {}

 private:
  void Run() override {
    virDomainPtr* domains = nullptr;
    int count = virConnectListAllDomains(conn_, &domains, 0);
    if (count < 0) {
      Fail(TakeLastError("could not list domains"));
      return;
    }
    std::optional<Failure> failure;
    for (int i = 0; i < count; i++) {
      virDomainPtr dom = domains[i];
      if (!failure) {
        DomainRow row;
        const char* name = virDomainGetName(dom);
        row.name = name != nullptr ? name : "";
        char uuid[VIR_UUID_STRING_BUFLEN];
        if (virDomainGetUUIDString(dom, uuid) == 0) row.uuid = uuid;
        unsigned int id = virDomainGetID(dom);
        row.id = id == static_cast<unsigned int>(-1) ? -1 : static_cast<int>(id);
        if (virDomainGetState(dom, &row.state, &row.reason, 0) == 0) {
          rows_.push_back(std::move(row));
        } else {
          Failure f = TakeLastError("could not read the state of domain '" + row.name + "'");
          if (f.code != VIR_ERR_NO_DOMAIN) failure = std::move(f);  // undefined since listed: skip it
        }
      }
      virDomainFree(dom);
    }
    free(domains);
    if (failure) Fail(std::move(*failure));
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, rows_.size());
    for (size_t i = 0; i < rows_.size(); i++) {
      const DomainRow& r = rows_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", r.name);
      o.Set("uuid", r.uuid);
      o.Set("id", Napi::Number::New(env, r.id));
      o.Set("state", Napi::Number::New(env, r.state));
      o.Set("reason", Napi::Number::New(env, r.reason));
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

  std::vector<DomainRow> rows_;
};

Napi::Value ListDomains(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  virConnectPtr conn = AcquireArgument(info, 0);
  if (conn == nullptr) return RejectedPromise(env, ClosedConnection());
  return (new ListDomainsWorker(env, conn))->Start();
}

// ---------------------------------------------------------------- interfaceAddresses

struct AddressRow {
  int family = 4;  // 4 or 6
  std::string addr;
  unsigned int prefix = 0;
};

struct InterfaceRow {
  std::string name;
  std::optional<std::string> mac;
  std::vector<AddressRow> addrs;
};

struct DomainAddresses {
  std::string name;
  std::optional<Failure> error;
  std::vector<InterfaceRow> interfaces;
};

// Runs fn(0..count-1) on up to `concurrency` threads (this one included). libvirt connections
// are thread-safe, and a remote libvirtd serves several calls of one client at once
// (max_client_requests, 5 by default), so a slow guest agent does not hold up the others.
void ForEachIndex(size_t count, size_t concurrency, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  auto drain = [&] {
    for (size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) fn(i);
  };
  std::vector<std::thread> helpers;
  size_t extra = std::min(concurrency, count);
  extra = extra > 0 ? extra - 1 : 0;
  for (size_t k = 0; k < extra; k++) {
    try {
      helpers.emplace_back(drain);
    } catch (const std::system_error&) {
      break;  // fewer threads is still correct
    }
  }
  drain();
  for (auto& t : helpers) t.join();
}

class InterfaceAddressesWorker : public ConnectionWorker {
 public:
  InterfaceAddressesWorker(Napi::Env env, virConnectPtr conn, std::optional<std::vector<std::string>> names,
                           unsigned int source, size_t concurrency)
      : ConnectionWorker(env, conn), names_(std::move(names)), source_(source), concurrency_(concurrency) {}

 private:
  void Run() override {
    std::vector<virDomainPtr> domains;
    if (names_) {
      results_.resize(names_->size());
      domains.assign(names_->size(), nullptr);
      for (size_t i = 0; i < names_->size(); i++) results_[i].name = (*names_)[i];
    } else {
      // The whole fleet, inactive domains included: each gets its own answer ("not running").
      virDomainPtr* list = nullptr;
      int count = virConnectListAllDomains(conn_, &list, 0);
      if (count < 0) {
        Fail(TakeLastError("could not list domains"));
        return;
      }
      domains.assign(list, list + count);
      free(list);
      results_.resize(domains.size());
      for (size_t i = 0; i < domains.size(); i++) {
        const char* name = virDomainGetName(domains[i]);
        results_[i].name = name != nullptr ? name : "";
      }
    }
    ForEachIndex(results_.size(), concurrency_, [&](size_t i) { Resolve(domains[i], results_[i]); });
  }

  // Fills one domain's answer; frees `dom` (looked up by name when null).
  void Resolve(virDomainPtr dom, DomainAddresses& out) {
    if (dom == nullptr) {
      dom = virDomainLookupByName(conn_, out.name.c_str());
      if (dom == nullptr) {
        out.error = TakeLastError("no domain named '" + out.name + "'");
        return;
      }
    }
    virDomainInterfacePtr* ifaces = nullptr;
    int count = virDomainInterfaceAddresses(dom, &ifaces, source_, 0);
    if (count < 0) {
      out.error = TakeLastError("could not read the interface addresses of '" + out.name + "'");
    } else {
      out.interfaces.reserve(count);
      for (int i = 0; i < count; i++) {
        virDomainInterfacePtr iface = ifaces[i];
        InterfaceRow row;
        row.name = iface->name != nullptr ? iface->name : "";
        if (iface->hwaddr != nullptr) row.mac = iface->hwaddr;
        for (unsigned int j = 0; j < iface->naddrs; j++) {
          const virDomainIPAddress& a = iface->addrs[j];
          if (a.addr == nullptr) continue;
          row.addrs.push_back(AddressRow{a.type == VIR_IP_ADDR_TYPE_IPV6 ? 6 : 4, a.addr, a.prefix});
        }
        out.interfaces.push_back(std::move(row));
        virDomainInterfaceFree(iface);
      }
      free(ifaces);
    }
    virDomainFree(dom);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, results_.size());
    for (size_t i = 0; i < results_.size(); i++) {
      const DomainAddresses& d = results_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", d.name);
      if (d.error) o.Set("error", FailureObject(env, *d.error));
      Napi::Array ifaces = Napi::Array::New(env, d.interfaces.size());
      for (size_t j = 0; j < d.interfaces.size(); j++) {
        const InterfaceRow& r = d.interfaces[j];
        Napi::Object io = Napi::Object::New(env);
        io.Set("name", r.name);
        io.Set("mac", r.mac ? Napi::Value(Napi::String::New(env, *r.mac)) : env.Null());
        Napi::Array addrs = Napi::Array::New(env, r.addrs.size());
        for (size_t k = 0; k < r.addrs.size(); k++) {
          Napi::Object ao = Napi::Object::New(env);
          ao.Set("type", Napi::Number::New(env, r.addrs[k].family));
          ao.Set("addr", r.addrs[k].addr);
          ao.Set("prefix", Napi::Number::New(env, r.addrs[k].prefix));
          addrs.Set(static_cast<uint32_t>(k), ao);
        }
        io.Set("addrs", addrs);
        ifaces.Set(static_cast<uint32_t>(j), io);
      }
      o.Set("interfaces", ifaces);
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

  std::optional<std::vector<std::string>> names_;
  unsigned int source_;
  size_t concurrency_;
  std::vector<DomainAddresses> results_;
};

Napi::Value InterfaceAddresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "interfaceAddresses(conn, names: string[] | null, source: 0 | 1 | 2, concurrency?: number)";
  std::optional<std::vector<std::string>> names;
  if (info.Length() > 1 && info[1].IsArray()) {
    Napi::Array array = info[1].As<Napi::Array>();
    names.emplace();
    names->reserve(array.Length());
    for (uint32_t i = 0; i < array.Length(); i++) {
      Napi::Value v = array.Get(i);
      if (!v.IsString()) throw Napi::TypeError::New(env, std::string(usage) + ": names must be strings");
      names->push_back(v.As<Napi::String>().Utf8Value());
    }
  } else if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) {
    throw Napi::TypeError::New(env, usage);
  }
  if (info.Length() < 3 || !info[2].IsNumber()) throw Napi::TypeError::New(env, usage);
  int source = info[2].As<Napi::Number>().Int32Value();
  if (source < 0 || source > VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP) {
    throw Napi::RangeError::New(env, std::string(usage) + ": source is 0 (lease), 1 (agent) or 2 (arp)");
  }
  size_t concurrency = 1;
  if (info.Length() > 3 && info[3].IsNumber()) {
    concurrency = static_cast<size_t>(std::clamp(info[3].As<Napi::Number>().Int32Value(), 1, 64));
  }
  virConnectPtr conn = AcquireArgument(info, 0);
  if (conn == nullptr) return RejectedPromise(env, ClosedConnection());
  return (new InterfaceAddressesWorker(env, conn, std::move(names), static_cast<unsigned int>(source), concurrency))
      ->Start();
}

// ---------------------------------------------------------------- agentCommand

class AgentCommandWorker : public ConnectionWorker {
 public:
  AgentCommandWorker(Napi::Env env, virConnectPtr conn, std::string domain, std::string command, int timeout)
      : ConnectionWorker(env, conn), domain_(std::move(domain)), command_(std::move(command)), timeout_(timeout) {}

 private:
  void Run() override {
    virDomainPtr dom = virDomainLookupByName(conn_, domain_.c_str());
    if (dom == nullptr) {
      Fail(TakeLastError("no domain named '" + domain_ + "'"));
      return;
    }
    char* reply = virDomainQemuAgentCommand(dom, command_.c_str(), timeout_, 0);
    if (reply == nullptr) {
      Fail(TakeLastError("the guest agent of '" + domain_ + "' did not answer"));
    } else {
      reply_ = reply;
      free(reply);
    }
    virDomainFree(dom);
  }

  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, reply_); }

  std::string domain_;
  std::string command_;
  int timeout_;
  std::string reply_;
};

Napi::Value AgentCommand(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[1].IsString() || !info[2].IsString() || !info[3].IsNumber()) {
    throw Napi::TypeError::New(env, "agentCommand(conn, domain: string, json: string, timeoutSeconds: number)");
  }
  // timeoutSeconds > 0, or libvirt's specials: -2 block, -1 default, 0 do not wait.
  int timeout = std::max(info[3].As<Napi::Number>().Int32Value(), static_cast<int>(VIR_DOMAIN_QEMU_AGENT_COMMAND_MIN));
  std::string domain = info[1].As<Napi::String>().Utf8Value();
  std::string command = info[2].As<Napi::String>().Utf8Value();
  virConnectPtr conn = AcquireArgument(info, 0);
  if (conn == nullptr) return RejectedPromise(env, ClosedConnection());
  return (new AgentCommandWorker(env, conn, std::move(domain), std::move(command), timeout))->Start();
}

// ---------------------------------------------------------------- module

void IgnoreLibvirtError(void*, virErrorPtr) {}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  if (virInitialize() < 0) throw Napi::Error::New(env, "libvirt failed to initialize");
  // libvirt prints every error to stderr by default; ours come back as rejected Promises.
  virSetErrorFunc(nullptr, IgnoreLibvirtError);

  auto data = new AddonData();
  data->state = std::make_shared<EnvState>();
  data->connectionConstructor = Napi::Persistent(Connection::Define(env));
  env.SetInstanceData<AddonData>(data);

  auto* hookState = new std::shared_ptr<EnvState>(data->state);
  napi_add_env_cleanup_hook(
      env,
      [](void* arg) {
        auto* state = static_cast<std::shared_ptr<EnvState>*>(arg);
        (*state)->tearingDown.store(true);
        delete state;
      },
      hookState);

  unsigned long version = 0;  // NOLINT(runtime/int): libvirt's type
  virGetVersion(&version, nullptr, nullptr);  // the library's own version: no connection, no I/O
  std::string versionString = std::to_string(version / 1000000) + "." + std::to_string(version / 1000 % 1000) +
                              "." + std::to_string(version % 1000);

  exports.Set("open", Napi::Function::New<Open>(env, "open"));
  exports.Set("listDomains", Napi::Function::New<ListDomains>(env, "listDomains"));
  exports.Set("interfaceAddresses", Napi::Function::New<InterfaceAddresses>(env, "interfaceAddresses"));
  exports.Set("agentCommand", Napi::Function::New<AgentCommand>(env, "agentCommand"));
  exports.Set("Connection", data->connectionConstructor.Value());
  exports.Set("libvirtVersion", versionString);
  return exports;
}

}  // namespace

NODE_API_MODULE(clonebox_libvirt, Init)
