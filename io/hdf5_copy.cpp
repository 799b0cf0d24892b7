#include "io/hdf5_copy.h"

#include <cstdint>
#include <vector>

#include "engine/error.h"
#include "io/hdf5_util.h"

namespace seis {

namespace {

struct Link {
  std::string name;
  H5L_type_t type = H5L_TYPE_ERROR;
};

herr_t collect_link(hid_t, const char* name, const H5L_info_t* info, void* out) {
  static_cast<std::vector<Link>*>(out)->push_back({name, info->type});
  return 0;
}

herr_t collect_name(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

// A soft link's target path, or an external link's file and path, as HDF5 stores them.
std::vector<char> link_value(hid_t src, const std::string& name, size_t size, const std::string& src_path) {
  std::vector<char> v(size + 1, '\0');
  if (H5Lget_val(src, name.c_str(), v.data(), size, H5P_DEFAULT) < 0) {
    throw InputError(src_path + ": cannot read the link /" + name + ": " + h5_error());
  }
  return v;
}

void copy_link(hid_t src, const Link& l, const std::string& src_path, hid_t dst, const std::string& dst_path,
               H5CopyResult* r) {
  const char* name = l.name.c_str();
  auto fail = [&](const std::string& what) {
    throw InputError(dst_path + ": cannot copy /" + l.name + " of " + src_path + " (" + what + "): " + h5_error());
  };
  if (l.type == H5L_TYPE_HARD) {
    Hid ocpypl(H5Pcreate(H5P_OBJECT_COPY));
    if (H5Ocopy(src, name, dst, name, ocpypl.get(), H5P_DEFAULT) < 0) fail("H5Ocopy");
  } else if (l.type == H5L_TYPE_SOFT || l.type == H5L_TYPE_EXTERNAL) {
    H5L_info_t info;
    if (H5Lget_info(src, name, &info, H5P_DEFAULT) < 0) fail("reading the link");
    const std::vector<char> v = link_value(src, l.name, info.u.val_size, src_path);
    if (l.type == H5L_TYPE_SOFT) {
      if (H5Lcreate_soft(v.data(), dst, name, H5P_DEFAULT, H5P_DEFAULT) < 0) fail("a soft link");
    } else {
      const char* file = nullptr;
      const char* path = nullptr;
      unsigned flags = 0;
      if (H5Lunpack_elink_val(v.data(), info.u.val_size, &flags, &file, &path) < 0 ||
          H5Lcreate_external(file, path, dst, name, H5P_DEFAULT, H5P_DEFAULT) < 0) {
        fail("an external link");
      }
    }
  } else {
    H5Eclear2(H5E_DEFAULT);
    r->skipped.push_back("/" + l.name + ": a link of a user-defined class");
    return;
  }
  r->objects.push_back(l.name);
}

// Attribute `name` of src (the object `where` names: "root attribute" or "attribute of /data")
// onto dst.
void copy_attribute(hid_t src, const std::string& name, const std::string& where, const std::string& src_path,
                    hid_t dst, const std::string& dst_path, H5CopyResult* r) {
  Hid a(H5Aopen(src, name.c_str(), H5P_DEFAULT));
  Hid stored(a.ok() ? H5Aget_type(a.get()) : -1);
  // (A committed type belongs to the source file: a transient copy describes the same values.)
  Hid type(stored.ok() ? H5Tcopy(stored.get()) : -1);
  Hid space(type.ok() ? H5Aget_space(a.get()) : -1);
  if (!space.ok()) throw InputError(src_path + ": cannot read the " + where + " '" + name + "': " + h5_error());
  if (H5Tdetect_class(type.get(), H5T_REFERENCE) > 0) {
    r->skipped.push_back(where + " '" + name + "': it holds object references, which would point into " + src_path);
    return;
  }
  const hssize_t points = H5Sget_simple_extent_npoints(space.get());
  const size_t elem = H5Tget_size(type.get());
  if (points < 0 || elem == 0) throw InputError(src_path + ": the " + where + " '" + name + "' has no readable shape");
  // (The type from H5Aget_type describes the values in memory too: variable-length data come as
  // pointers the library allocates, handed back with H5Dvlen_reclaim.)
  std::vector<uint8_t> buf(static_cast<size_t>(points) * elem + 1);
  if (H5Aread(a.get(), type.get(), buf.data()) < 0) {
    throw InputError(src_path + ": cannot read the " + where + " '" + name + "': " + h5_error());
  }
  Hid b(H5Acreate2(dst, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  const bool written = b.ok() && H5Awrite(b.get(), type.get(), buf.data()) >= 0;
  const std::string err = written ? "" : h5_error();
  H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, buf.data());
  if (!written) throw InputError(dst_path + ": cannot write the " + where + " '" + name + "': " + err);
  r->attributes.push_back(where == "root attribute" ? name : where.substr(where.find('/')) + ": " + name);
}

// Every attribute of src onto dst.
void copy_attributes(hid_t src, const std::string& where, const std::string& src_path, hid_t dst,
                     const std::string& dst_path, H5CopyResult* r) {
  std::vector<std::string> names;
  if (H5Aiterate2(src, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names) < 0) {
    const std::string which =
        where == "root attribute" ? "root attributes" : "attributes of " + where.substr(where.find('/'));
    throw InputError(src_path + ": cannot list the " + which + ": " + h5_error());
  }
  for (const std::string& name : names) copy_attribute(src, name, where, src_path, dst, dst_path, r);
}

}  // namespace

H5CopyResult h5_copy_root(hid_t src, const std::string& src_path, hid_t dst, const std::string& dst_path,
                          const std::set<std::string>& except, const std::set<std::string>& attributes_of) {
  H5CopyResult r;
  std::vector<Link> links;
  if (H5Literate(src, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link, &links) < 0) {
    throw InputError(src_path + ": cannot list the objects under its root: " + h5_error());
  }
  for (const Link& l : links) {
    if (except.count(l.name) == 0) copy_link(src, l, src_path, dst, dst_path, &r);
  }
  copy_attributes(src, "root attribute", src_path, dst, dst_path, &r);
  for (const std::string& name : attributes_of) {
    if (H5Lexists(src, name.c_str(), H5P_DEFAULT) <= 0 || H5Lexists(dst, name.c_str(), H5P_DEFAULT) <= 0) continue;
    Hid from(H5Oopen(src, name.c_str(), H5P_DEFAULT)), to(H5Oopen(dst, name.c_str(), H5P_DEFAULT));
    if (!from.ok() || !to.ok()) throw InputError(src_path + ": cannot open /" + name + ": " + h5_error());
    copy_attributes(from.get(), "attribute of /" + name, src_path, to.get(), dst_path, &r);
  }
  H5Eclear2(H5E_DEFAULT);
  return r;
}

}  // namespace seis
