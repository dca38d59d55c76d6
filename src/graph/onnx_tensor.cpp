// Constant tensors of an ONNX model: reading initializers and Constant values (every storage
// ONNX allows: raw little-endian bytes or the typed repeated fields), and writing folded values
// back for shape inference.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "graph/onnx_model.h"

namespace gos::graph::onnx_import {

namespace {

using onnx::TensorProto_DataType;

// Beyond this a tensor is not a plausible model constant; also keeps element counts far from
// overflow.
constexpr int64_t kMaxConstantElements = int64_t{1} << 31;

int64_t checked_elements(const Shape& shape, const std::string& what) {
  int64_t count = 1;
  for (int64_t extent : shape) {
    if (extent < 0 || (extent > 0 && count > kMaxConstantElements / extent)) {
      throw GraphError(what + " has an invalid or too large shape");
    }
    count *= extent;
  }
  return count;
}

size_t element_size(int32_t type) {
  switch (type) {
    case onnx::TensorProto_DataType_FLOAT:
    case onnx::TensorProto_DataType_INT32:
      return 4;
    case onnx::TensorProto_DataType_DOUBLE:
    case onnx::TensorProto_DataType_INT64:
      return 8;
    case onnx::TensorProto_DataType_UINT8:
    case onnx::TensorProto_DataType_INT8:
    case onnx::TensorProto_DataType_BOOL:
      return 1;
  }
  return 0;
}

template <typename T>
void append_raw(const std::string& bytes, std::vector<double>& values) {
  for (size_t offset = 0; offset < bytes.size(); offset += sizeof(T)) {
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    values.push_back(static_cast<double>(value));
  }
}

std::vector<double> raw_values(const std::string& bytes, int32_t type) {
  std::vector<double> values;
  switch (type) {
    case onnx::TensorProto_DataType_FLOAT:
      append_raw<float>(bytes, values);
      break;
    case onnx::TensorProto_DataType_DOUBLE:
      append_raw<double>(bytes, values);
      break;
    case onnx::TensorProto_DataType_INT32:
      append_raw<int32_t>(bytes, values);
      break;
    case onnx::TensorProto_DataType_INT64:
      append_raw<int64_t>(bytes, values);
      break;
    case onnx::TensorProto_DataType_UINT8:
      append_raw<uint8_t>(bytes, values);
      break;
    case onnx::TensorProto_DataType_INT8:
      append_raw<int8_t>(bytes, values);
      break;
    case onnx::TensorProto_DataType_BOOL:
      append_raw<uint8_t>(bytes, values);
      break;
  }
  return values;
}

template <typename Field>
std::vector<double> field_values(const Field& field) {
  return std::vector<double>(field.begin(), field.end());
}

std::vector<double> typed_values(const onnx::TensorProto& tensor) {
  switch (tensor.data_type()) {
    case onnx::TensorProto_DataType_FLOAT:
      return field_values(tensor.float_data());
    case onnx::TensorProto_DataType_DOUBLE:
      return field_values(tensor.double_data());
    case onnx::TensorProto_DataType_INT64:
      return field_values(tensor.int64_data());
    default:
      return field_values(tensor.int32_data());  // INT32, INT8, UINT8, BOOL
  }
}

}  // namespace

bool ConstValue::integer() const {
  return element_type != onnx::TensorProto_DataType_FLOAT && element_type != onnx::TensorProto_DataType_DOUBLE;
}

// Saturates: ONNX writes INT64_MAX for "to the end", which a double rounds just past the range.
int64_t ConstValue::as_int(size_t index) const {
  double value = values.at(index);
  if (std::isnan(value)) return 0;
  if (value >= 9.2e18) return std::numeric_limits<int64_t>::max();
  if (value <= -9.2e18) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(value);
}

std::vector<int64_t> ConstValue::as_ints() const {
  std::vector<int64_t> ints;
  for (size_t i = 0; i < values.size(); ++i) ints.push_back(as_int(i));
  return ints;
}

ir::Tensor ConstValue::to_tensor() const {
  constexpr double kIntegerLimit = 2147483648.0;  // 2^31: exact in float, far below int64 overflow
  std::vector<float> data;
  data.reserve(values.size());
  for (double value : values) {
    data.push_back(static_cast<float>(integer() ? std::clamp(value, -kIntegerLimit, kIntegerLimit) : value));
  }
  return ir::Tensor(shape, std::move(data));
}

ConstValue read_tensor(const onnx::TensorProto& tensor, const std::string& what) {
  if (tensor.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) {
    throw GraphError(what +
                     " keeps its data in an external file; gos reads self-contained ONNX files "
                     "(save the model without external data)");
  }
  if (tensor.has_segment()) throw GraphError(what + " is segmented, which gos does not read");
  const size_t size = element_size(tensor.data_type());
  if (size == 0) {
    throw GraphError(what + " has element type " + std::to_string(tensor.data_type()) +
                     "; gos reads float, double, int8/uint8/int32/int64 and bool tensors");
  }
  ConstValue value;
  value.shape.assign(tensor.dims().begin(), tensor.dims().end());
  value.element_type = tensor.data_type();
  const int64_t count = checked_elements(value.shape, what);
  if (tensor.has_raw_data()) {
    if (tensor.raw_data().size() != static_cast<size_t>(count) * size) {
      throw GraphError(what + " holds " + std::to_string(tensor.raw_data().size()) +
                       " bytes of data; its shape needs " + std::to_string(count * static_cast<int64_t>(size)));
    }
    value.values = raw_values(tensor.raw_data(), tensor.data_type());
  } else {
    value.values = typed_values(tensor);
    if (static_cast<int64_t>(value.values.size()) != count) {
      throw GraphError(what + " holds " + std::to_string(value.values.size()) + " values; its shape needs " +
                       std::to_string(count));
    }
  }
  return value;
}

onnx::TensorProto write_tensor(const ConstValue& value, const std::string& name) {
  onnx::TensorProto tensor;
  tensor.set_name(name);
  for (int64_t extent : value.shape) tensor.add_dims(extent);
  tensor.set_data_type(value.element_type);
  for (size_t i = 0; i < value.values.size(); ++i) {
    switch (value.element_type) {
      case onnx::TensorProto_DataType_FLOAT:
        tensor.add_float_data(static_cast<float>(value.values[i]));
        break;
      case onnx::TensorProto_DataType_DOUBLE:
        tensor.add_double_data(value.values[i]);
        break;
      case onnx::TensorProto_DataType_INT64:
        tensor.add_int64_data(value.as_int(i));
        break;
      default:
        tensor.add_int32_data(static_cast<int32_t>(value.as_int(i)));
        break;
    }
  }
  return tensor;
}

}  // namespace gos::graph::onnx_import
