//! Makes the two descriptor sets the proxy embeds from envoy-types' `types.bin`:
//! `envoy.bin`, every Envoy message without source comments (for reading any bootstrap and
//! explaining what is not supported), and `proxy.bin`, only the files the served resource
//! types need (kept in memory for the proxy's whole life). Run by
//! scripts/update-envoy-descriptors.sh: `trim_descriptors TYPES_BIN OUT_DIR`.

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use prost_types::{DescriptorProto, FileDescriptorSet};
use std::collections::{BTreeSet, HashMap};

fn index(prefix: &str, msgs: &[DescriptorProto], file: &str, out: &mut HashMap<String, String>) {
    for m in msgs {
        let full = format!("{prefix}{}", m.name());
        index(&format!("{full}."), &m.nested_type, file, out);
        out.insert(full, file.to_string());
    }
}

/// Field options carry protoc-gen-validate rules as extensions, which prost's descriptor
/// types would drop; the files are therefore edited as dynamic messages, which keep them.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, out_dir] = args.as_slice() else {
        return Err("usage: trim_descriptors TYPES_BIN OUT_DIR".into());
    };
    let bytes = std::fs::read(input)?;
    let set = FileDescriptorSet::decode(bytes.as_slice())?;
    let meta = set
        .file
        .iter()
        .find(|f| f.name() == "google/protobuf/descriptor.proto")
        .ok_or("descriptor.proto is not in the set")?;
    let meta_pool = DescriptorPool::from_file_descriptor_set(FileDescriptorSet {
        file: vec![meta.clone()],
    })?;
    let set_desc = meta_pool
        .get_message_by_name("google.protobuf.FileDescriptorSet")
        .ok_or("no FileDescriptorSet")?;
    let mut dynamic = DynamicMessage::decode(set_desc, bytes.as_slice())?;
    let Some(Value::List(files)) = dynamic.get_field_by_name_mut("file").map(|v| v.clone()) else {
        return Err("no files".into());
    };
    let mut stripped = Vec::new();
    for f in files {
        let Value::Message(mut m) = f else { continue };
        m.clear_field_by_name("source_code_info");
        stripped.push(m);
    }
    dynamic.set_field_by_name(
        "file",
        Value::List(stripped.iter().cloned().map(Value::Message).collect()),
    );
    std::fs::write(format!("{out_dir}/envoy.bin"), dynamic.encode_to_vec())?;

    let mut defined = HashMap::new();
    for f in &set.file {
        index(
            &format!("{}.", f.package()),
            &f.message_type,
            f.name(),
            &mut defined,
        );
    }
    let by_name: HashMap<&str, _> = set.file.iter().map(|f| (f.name(), f)).collect();
    let mut stack: Vec<String> = weft_proxy::descriptors::SERVED_ROOTS
        .iter()
        .map(|r| {
            defined
                .get(*r)
                .cloned()
                .ok_or(format!("{r} is not defined"))
        })
        .collect::<Result<_, _>>()?;
    stack.push("validate/validate.proto".into());
    let mut need = BTreeSet::new();
    while let Some(f) = stack.pop() {
        if need.insert(f.clone()) {
            stack.extend(by_name[f.as_str()].dependency.iter().cloned());
        }
    }
    let kept: Vec<Value> = stripped
        .into_iter()
        .filter(|m| match m.get_field_by_name("name").as_deref() {
            Some(Value::String(n)) => need.contains(n),
            _ => false,
        })
        .map(Value::Message)
        .collect();
    let count = kept.len();
    dynamic.set_field_by_name("file", Value::List(kept));
    std::fs::write(format!("{out_dir}/proxy.bin"), dynamic.encode_to_vec())?;
    println!(
        "{} files in envoy.bin, {count} in proxy.bin",
        set.file.len()
    );
    Ok(())
}
